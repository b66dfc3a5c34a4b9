"""Odoo 19's JSON-2 endpoint, POST /json/2/<model>/<method>, for the Odoo double (odoo.py), answering as the real
server does in tests/data/odoo19 (its code: odoo/http.py's Json2Dispatcher, addons/rpc/controllers/json2.py).

In Odoo's order: the X-Odoo-Database header (an unknown database: Werkzeug's HTML 404; none: the only database),
the route (anything else under /json/2 is a JSON 404), the Content-Type (a body that is not JSON: an HTML 415),
the API key (401), the JSON body (400), the model, the method (private: 403), then the body's keys bound by name
to the method's parameters as inspect.Signature.bind does there (422), and the call. Errors are JSON
{"name", "message", "arguments", "context", "debug"} with the status of Odoo's exception: werkzeug's HTTP errors
carry [message, status] as arguments, Odoo's UserError family their own status, any other exception 500.
"""

import inspect
import json
import re
from urllib.parse import unquote, urlsplit

JSON = "application/json; charset=utf-8"
HTML = "text/html; charset=utf-8"
NOT_FOUND_NODB = """\
<!DOCTYPE html>
<title>404 Not Found</title>
<h1>Not Found</h1>
<p>No database is selected and the requested URL was not found in the server-wide controllers.</p>
<p>Please verify the hostname, <a href=/web/login>login</a> and try again.</p>

<!-- Alternatively, use the X-Odoo-Database header. -->
"""
RPC_RULE, OTHER_RULE = "/json/2/<__model__>/<__method__>", "/json/2"
WERKZEUG = {400: "BadRequest", 401: "Unauthorized", 404: "NotFound", 422: "UnprocessableEntity"}
# odoo.exceptions' http_status; any other odoo.exceptions.UserError is 422.
USER_ERROR_STATUS = {"odoo.exceptions.AccessDenied": 403, "odoo.exceptions.AccessError": 403,
                     "odoo.exceptions.MissingError": 404, "odoo.exceptions.LockError": 409}


class Answer(Exception):
    """An error answer: raised where Odoo raises, sent as Odoo's handle_error sends it."""

    def __init__(self, status, name, message, arguments, headers=()):
        super().__init__(message)
        self.status, self.name, self.message, self.arguments, self.headers = status, name, message, arguments, headers

    def reply(self):
        debug = "Traceback (most recent call last):\n  (the Odoo double)\n%s: %s\n" % (self.name, self.message)
        body = {"name": self.name, "message": self.message, "arguments": self.arguments, "context": {}, "debug": debug}
        return self.status, json.dumps(body, ensure_ascii=False), JSON, list(self.headers)


def http_error(status, message, headers=()):
    return Answer(status, "werkzeug.exceptions." + WERKZEUG[status], message, [message, status], headers)


def unauthorized(message):
    return http_error(401, message, [("WWW-Authenticate", "Bearer ")])


def fault_answer(code, message, name):
    """The double's OdooError as JSON-2 sends it. Code 1 holds a Python exception as its traceback's last line
    ("module.Type: message"); code 3 (a refused login) is a key that no longer works."""
    if code == 1:
        etype, _, message = message.partition(": ")
        return Answer(500, etype if "." in etype else "builtins." + etype, message, [message])
    if code == 3:
        return unauthorized("Invalid apikey")
    return Answer(USER_ERROR_STATUS.get(name, 422), name, message, [message])


def unsupported_media_type(mimetype, rule):
    """Werkzeug's HTML 415, with the dispatchers Odoo finds compatible with the request."""
    compatible = ["http"] + (["jsonrpc"] if mimetype == "application/json-rpc" else [])
    text = ("Request inferred type is compatible with %r but %r is type='json2'.\n\n"
            "Please verify the Content-Type request header and try again." % (compatible, rule))
    for c, e in (("&", "&amp;"), ("<", "&lt;"), (">", "&gt;"), ("'", "&#39;"), ('"', "&#34;"), ("\n", "<br>")):
        text = text.replace(c, e)
    page = ("<!doctype html>\n<html lang=en>\n<title>415 Unsupported Media Type</title>\n"
            "<h1>Unsupported Media Type</h1>\n<p>%s</p>\n" % text)
    return 415, page, HTML, [("Accept", "application/json")]


def api_model(method):
    """Odoo's @api.model (and @api.model_create_multi): called without ids."""
    method.api_model = True
    return method


class Records:
    """The public methods of Odoo 19's models that the double serves, with Odoo's parameters (self is the records),
    each mapping its arguments onto the double's execute(uid, model, method, args, kw) as XML-RPC's execute_kw
    would carry them: positional arguments (the ids first for a records' method), keyword ones with the context."""

    def __init__(self, model, ids, context, call):
        self.model, self.context, self.call = model, context, call
        self.ids = [ids] if isinstance(ids, int) else list(ids)  # browse() takes one id too

    def run(self, method, args, **kw):
        return self.call(self.model, method, args, dict(kw, context=self.context))

    def ensure_one(self):
        if len(self.ids) != 1:
            raise ValueError("Expected singleton: %s%r" % (self.model, tuple(self.ids)))

    @api_model
    def search(self, domain, offset=0, limit=None, order=None):
        return self.run("search", [domain], offset=offset, limit=limit, order=order)

    @api_model
    def search_read(self, domain=None, fields=None, offset=0, limit=None, order=None, **read_kwargs):
        unknown = next((k for k in read_kwargs if k != "load"), None)
        if unknown is not None:  # read_kwargs go to _read_format(fnames, load='_classic_read')
            raise TypeError("BaseModel._read_format() got an unexpected keyword argument %r" % unknown)
        return self.run("search_read", [domain or []], fields=fields, offset=offset, limit=limit, order=order)

    @api_model
    def search_count(self, domain, limit=None):
        return self.run("search_count", [domain], limit=limit)

    def read(self, fields=None, load="_classic_read"):
        return self.run("read", [self.ids, fields])

    def write(self, vals):
        return self.run("write", [self.ids, vals])

    @api_model
    def create(self, vals_list):
        """Answers the new records' ids, also for a single dict."""
        return [self.run("create", [vals]) for vals in ([vals_list] if isinstance(vals_list, dict) else vals_list)]

    def unlink(self):
        return self.run("unlink", [self.ids])

    @api_model
    def fields_get(self, allfields=None, attributes=None):
        return self.run("fields_get", [allfields], attributes=attributes)

    @api_model
    def default_get(self, fields):
        return self.run("default_get", [fields])

    @api_model
    def read_group(self, domain, fields, groupby, offset=0, limit=None, orderby=False, lazy=True):
        return self.run("read_group", [domain, fields, groupby], offset=offset, limit=limit, orderby=orderby,
                        lazy=lazy)

    @api_model
    def formatted_read_group(self, domain, groupby=(), aggregates=(), having=(), offset=0, limit=None, order=None):
        return self.run("formatted_read_group", [domain, list(groupby), list(aggregates)], having=list(having),
                        offset=offset, limit=limit, order=order)

    @api_model
    def check_access_rights(self, operation, raise_exception=True):
        return self.run("check_access_rights", [operation], raise_exception=raise_exception)

    def has_access(self, operation):
        return self.run("has_access", [self.ids, operation])

    def message_post(self, **kwargs):
        """Odoo's parameters are all keyword-only, with **kwargs: any key binds. Answers [message id]."""
        self.ensure_one()
        return self.run("message_post", [self.ids], **kwargs)

    def action_set_lost(self, **additional_values):
        return self.run("action_set_lost", [self.ids], **additional_values)

    @api_model
    def context_get(self):
        return self.run("context_get", [])

    def has_group(self, group_ext_id):
        self.ensure_one()
        return self.run("has_group", [self.ids, group_ext_id])

    @api_model
    def check_object_reference(self, module, xml_id, raise_on_access_error=False):
        return self.run("check_object_reference", [module, xml_id])


BASE_METHODS = {"search", "search_read", "search_count", "read", "write", "create", "unlink", "fields_get",
                "default_get", "read_group", "formatted_read_group", "check_access_rights", "has_access"}
MODEL_METHODS = {"crm.lead": {"message_post", "action_set_lost"}, "crm.team": {"message_post"},
                 "phone.blacklist": {"message_post"}, "res.users": {"context_get", "has_group"},
                 "ir.model.data": {"check_object_reference"}}


def public_method(model, name):
    """odoo.service.model.get_public_method, then the controller's NotFound."""
    if name.startswith("_"):
        e = "Private methods (such as '%s.%s') cannot be called remotely." % (model, name)
        raise Answer(403, "odoo.exceptions.AccessError", e, [e])
    if name not in BASE_METHODS | MODEL_METHODS.get(model, set()):
        raise http_error(404, "The method '%s.%s' does not exist" % (model, name))
    return getattr(Records, name)


def serve(command, path, headers, raw, *, db, key, models, call, log, fault):
    """Answers (status, body, content type, headers) to a request under /json/2. db and key are the database's
    name and the API key; models the models there; call(model, method, args, kw) runs a call (the double's
    execute), raising fault (code, message, name) as Odoo's errors; log(model, method, body) records a call."""
    name = headers.get("X-Odoo-Database")
    if name and name != db:
        return 404, NOT_FOUND_NODB, HTML, []
    route = re.fullmatch(r"/json/2/([^/]+)/([^/]+)", urlsplit(path).path)
    rpc = route is not None and command == "POST"
    mimetype = (headers.get("Content-Type") or "").split(";")[0].strip().lower()
    if raw and mimetype != "application/json":
        return unsupported_media_type(mimetype, RPC_RULE if rpc else OTHER_RULE)
    try:
        if not rpc:
            raise http_error(404, "Did you mean POST /json/2/<model>/<method>?")
        bearer = re.match(r"^bearer\s+(.+)$", headers.get("Authorization") or "", re.IGNORECASE)
        if not bearer:
            raise unauthorized("User not authenticated, use an API Key with a Bearer Authorization header.")
        if bearer.group(1) != key:
            raise unauthorized("Invalid apikey")
        try:
            body = json.loads(raw.decode("utf-8", "replace")) if raw else {}
        except ValueError as e:
            raise http_error(400, "could not parse the body as json: %s" % e.args[0]) from e
        kwargs = dict(body) if isinstance(body, dict) else {}  # Odoo ignores a body that is not an object
        ids, context = kwargs.pop("ids", ()), kwargs.pop("context", {})
        model, method = unquote(route.group(1)), unquote(route.group(2))
        if model not in models:
            raise http_error(404, "the model %r does not exist" % model)
        func = public_method(model, method)
        if getattr(func, "api_model", False) and ids:
            raise http_error(422, "cannot call %s.%s with ids" % (model, method))
        records = Records(model, ids, context, call)
        try:
            inspect.signature(func).bind(records, **kwargs)
        except TypeError as e:
            raise http_error(422, e.args[0]) from e
        log(model, method, body)
        try:
            result = func(records, **kwargs)
        except fault as e:
            raise fault_answer(e.code, e.message, e.name) from e
        except (KeyError, IndexError, TypeError, ValueError) as e:  # a bad call crashes Odoo's method alike
            raise Answer(500, "builtins." + type(e).__name__, str(e), list(e.args)) from e
    except Answer as a:
        return a.reply()
    return 200, json.dumps(result, ensure_ascii=False), JSON, [("X-Content-Type-Options", "nosniff")]
