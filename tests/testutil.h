/*
 * Helpers shared by the C tests that talk to real servers: a free loopback
 * port, starting a Python test double (tests/fakes/) and reading the port it
 * prints, and a blocking HTTP call to a double's control endpoints.
 */
#ifndef CRMB_TESTUTIL_H
#define CRMB_TESTUTIL_H

#include <arpa/inet.h>
#include <curl/curl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static inline int
test_free_port(void)
{
	struct sockaddr_in a = {.sin_family = AF_INET};
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM, 0), p;

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	bind(fd, (struct sockaddr *)&a, sizeof(a));
	getsockname(fd, (struct sockaddr *)&a, &len);
	p = ntohs(a.sin_port);
	close(fd);
	return p;
}

/* Starts python3 $TOP_SRCDIR/tests/fakes/<name> with up to 6 args; returns its pid, its port in *port (0 on failure). */
static inline pid_t
test_spawn_double(const char *name, const char *const *args, int *port)
{
	char script[512];
	const char *argv[10] = {"python3", script};
	int p[2], n = 2;
	pid_t pid;
	FILE *f;

	snprintf(script, sizeof(script), "%s/tests/fakes/%s", getenv("TOP_SRCDIR") ?: ".", name);
	for (; args != NULL && args[n - 2] != NULL && n < 8; n++)
		argv[n] = args[n - 2];
	argv[n] = NULL;
	*port = 0;
	if (pipe(p) < 0)
		return -1;
	if ((pid = fork()) == 0) {
		dup2(p[1], 1);
		close(p[0]);
		execvp("python3", (char *const *)(uintptr_t)argv);
		_exit(127);
	}
	close(p[1]);
	f = fdopen(p[0], "r");
	if (f == NULL || fscanf(f, "PORT %d", port) != 1)
		*port = 0;
	return pid;
}

static inline size_t
test_http_sink(char *ptr, size_t size, size_t n, void *ud)
{
	char **buf = ud;
	size_t old = *buf ? strlen(*buf) : 0;

	*buf = realloc(*buf, old + size * n + 1);
	memcpy(*buf + old, ptr, size * n);
	(*buf)[old + size * n] = '\0';
	return size * n;
}

/* GET (post NULL) or POST a JSON body to http://127.0.0.1:port/path; returns the body (caller frees) or NULL. */
static inline char *
test_http(int port, const char *path, const char *post)
{
	CURL *c = curl_easy_init();
	char url[256], *out = NULL;
	struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");

	snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", port, path);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, test_http_sink);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &out);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
	if (post != NULL)
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, post);
	curl_easy_perform(c);
	curl_easy_cleanup(c);
	curl_slist_free_all(h);
	return out;
}

#endif
