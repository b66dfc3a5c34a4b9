/* The configuration's value checks: each returns why a value is invalid (never quoting it), or NULL. */
#ifndef CRMB_CONF_CHECKS_H
#define CRMB_CONF_CHECKS_H

#define OPENAI_DEFAULT_BASE "https://api.openai.com/v1"

const char *check_listen(const char *v);
const char *check_addresses(const char *v);
const char *check_http_url(const char *v);
const char *check_public_url(const char *v);
const char *check_redis_url(const char *v);
const char *check_account_sid(const char *v);
const char *check_service_sid(const char *v);
const char *check_whatsapp_from(const char *v);
const char *check_admin_token(const char *v);
const char *check_content_sid(const char *v);
const char *check_variables(const char *v);
const char *check_delays(const char *v);
const char *check_stripe_key(const char *v);
const char *check_stripe_price(const char *v);
const char *check_abs_path(const char *v);
const char *check_country(const char *v);
const char *check_currency(const char *v);
const char *check_hot_needs(const char *v);
const char *check_model(const char *v);
const char *check_provider(const char *v);
const char *check_max_tokens_param(const char *v);
const char *check_word(const char *v);
const char *check_protocol(const char *v);
const char *check_lead_type(const char *v);
const char *check_priority(const char *v);
const char *check_digits(const char *v);

#endif
