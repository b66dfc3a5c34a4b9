/*
 * XML-RPC encoding and decoding on libxml2, with values held as jansson
 * JSON (int, boolean, string, double, array, struct, nil) so that the
 * XML-RPC and JSON-2 protocols share one value model. A pure codec: no I/O,
 * allocation failure and hostile input are errors, never crashes.
 */
#ifndef CRMB_XMLRPC_H
#define CRMB_XMLRPC_H

#include <jansson.h>
#include <stddef.h>

#define XMLRPC_MAX_BODY (8 * 1024 * 1024)
#define XMLRPC_MAX_DEPTH 32

struct xmlrpc_fault {
	int code;
	char *string; /* the whole faultString (a traceback for code 1) */
	char message[256]; /* its last non-empty line, e.g. "ValueError: Invalid field 'x_source' ..." */
};

/*
 * Encodes a methodCall; params is a JSON array (borrowed). Integers outside
 * 32 bits become <i8> (Odoo's ints are 32-bit); null becomes <nil/>.
 * Returns a string the caller frees, or NULL if params holds something
 * XML-RPC cannot carry.
 */
char *xmlrpc_encode_call(const char *method, const json_t *params);
/*
 * Decodes a methodResponse of len bytes. Returns 0 and sets *result (caller
 * owns the reference), 1 for a fault (filled in fault; free with
 * xmlrpc_fault_clear), or -1 with a reason in why for anything malformed
 * (not XML, a DTD, too big, too deep, an unknown type).
 */
int xmlrpc_decode_response(const char *body, size_t len, json_t **result, struct xmlrpc_fault *fault, const char **why);
/* Decodes a methodCall (for the tests' double and the fuzzer); *params is the caller's. */
int xmlrpc_decode_call(const char *body, size_t len, char **method, json_t **params, const char **why);
void xmlrpc_fault_clear(struct xmlrpc_fault *f);

#endif
