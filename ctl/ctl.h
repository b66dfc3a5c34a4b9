/* crmbridgectl's commands that talk to a running daemon (admin.c). */
#ifndef CRMB_CTL_H
#define CRMB_CTL_H

#include <stdbool.h>
#include <stddef.h>

struct ctl_options {
	const char *config; /* -c: the daemon's configuration file */
	const char *url; /* --url: the admin endpoint's base URL, overriding the configuration */
	const char *token; /* --token: the admin token, overriding the configuration */
	bool json;
};

/* Runs status, analytics, conversation, dead-letters, leads, chat or replay; argv[0] is cmd. */
int ctl_admin(const char *cmd, int argc, char **argv, const struct ctl_options *o);
/* Reads a credential from the credential store as the service would be given it (encrypted ones through
 * systemd-creds decrypt, which needs root) into out; 0, or -1 when it is not there or cannot be read. */
int ctl_credential(const char *cred, char *out, size_t size);

#endif
