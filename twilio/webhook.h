/* The Twilio webhook endpoints. */
#ifndef CRMB_WEBHOOK_H
#define CRMB_WEBHOOK_H

#include <stdbool.h>

#include "common/http.h"

/* POST /api/webhook/whatsapp and /webhook/twilio/incoming. */
void webhook_whatsapp(struct http_request *req, void *arg);
/* POST /api/webhook/status: Twilio's delivery reports for the replies we sent. */
void webhook_status(struct http_request *req, void *arg);
/* True for whatsapp:+ followed by 7 to 15 digits, the first not 0. */
bool webhook_valid_from(const char *s);
/* True for SM or MM followed by 32 hexadecimal digits. */
bool webhook_valid_sid(const char *s);

#endif
