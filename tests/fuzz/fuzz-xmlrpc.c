/* The XML-RPC decoder (Odoo's answers, and calls as the Odoo double reads them). */
#include "config.h"

#include <stdlib.h>

#include "fuzz.h"
#include "odoo/xmlrpc.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	json_t *result = NULL, *params = NULL;
	struct xmlrpc_fault fault = {0};
	const char *why;
	char *method = NULL;
	int r = xmlrpc_decode_response((const char *)data, size, &result, &fault, &why);

	if (r == 0) {
		/* What decodes must encode again. */
		json_t *p = json_pack("[O]", result);
		char *again = xmlrpc_encode_call("x", p);
		if (again == NULL)
			__builtin_trap();
		free(again);
		json_decref(p);
		json_decref(result);
	} else if (r == 1) {
		xmlrpc_fault_clear(&fault);
	}
	if (xmlrpc_decode_call((const char *)data, size, &method, &params, &why) == 0) {
		free(method);
		json_decref(params);
	}
	return 0;
}
