/* Odoo's JSON-2 answers: input = a status byte, a method line, then the body. */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "odoo/client.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const long statuses[] = {200, 200, 200, 401, 403, 404, 409, 422, 500, 502, 503, 0};
	char method[32] = "";
	const char *body;
	size_t n, blen;
	json_t *result, *args = json_pack("[{s:s}]", "name", "x");
	struct odoo_error e;
	long status;

	if (size < 1) {
		json_decref(args);
		return 0;
	}
	status = statuses[data[0] % (sizeof(statuses) / sizeof(statuses[0]))];
	body = memchr(data + 1, '\n', size - 1);
	n = body != NULL ? (size_t)(body - (const char *)data - 1) : 0;
	if (body == NULL || n >= sizeof(method)) {
		json_decref(args);
		return 0;
	}
	memcpy(method, data + 1, n);
	method[n] = '\0';
	body++;
	blen = size - (size_t)(body - (const char *)data);
	switch (odoo_json2_answer(method, args, status, body, blen, &result, &e)) {
	case 0:
		if (result == NULL)
			__builtin_trap();
		json_decref(result);
		break;
	case 1:
	case -1:
	case -2:
		if (result != NULL || e.kind == ODOO_OK)
			__builtin_trap();
		break;
	default: __builtin_trap();
	}
	json_decref(args);
	return 0;
}
