/* The dashboard's files, compiled in from admin/web/ by admin/web2c.sh (admin/web-files.c, generated). */
#ifndef CRMB_WEB_FILES_H
#define CRMB_WEB_FILES_H

#include <stddef.h>

struct web_file {
	const char *path; /* "/admin", "/admin/app.js" */
	const char *type; /* its Content-Type */
	const unsigned char *data;
	size_t len;
};

extern const struct web_file web_files[];
extern const unsigned web_nfiles;

#endif
