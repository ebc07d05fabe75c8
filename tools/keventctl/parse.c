// SPDX-License-Identifier: LGPL-2.1 OR BSD-2-Clause
/*
 * Values from the command line. Strict: a value with anything left over, out of range, or
 * empty is -EINVAL, so that a typo is an error and not a different request.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "keventctl.h"

/* Digits only (no sign, no space, which strtoull would take): the value, or -EINVAL. */
static int kc_parse_u64(const char *s, const char **end, unsigned long long *v)
{
	char *e;

	if (!isdigit((unsigned char)*s))
		return -EINVAL;
	errno = 0;
	*v = strtoull(s, &e, 10);
	if (errno)
		return -EINVAL;
	*end = e;
	return 0;
}

int kc_parse_duration(const char *s, __u64 *ns)
{
	static const struct {
		const char *unit;
		__u64 ns;
	} units[] = {
		{ "ns", 1 },	   { "us", 1000 },	    { "ms", 1000000 },
		{ "s", 1000000000 }, { "m", 60000000000ULL }, { "h", 3600000000000ULL },
		{ "", 1000000000 }, /* a bare number: seconds, as inotifywait's -t */
	};
	unsigned long long whole, frac = 0, scale = 1;
	const char *p;

	if (kc_parse_u64(s, &p, &whole))
		return -EINVAL;
	if (*p == '.') {
		const char *f = ++p;

		/* Up to nine decimals: nanoseconds of a second are the finest anyone asks for. */
		while (isdigit((unsigned char)*p) && p - f < 9) {
			frac = frac * 10 + (unsigned long long)(*p++ - '0');
			scale *= 10;
		}
		if (p == f || isdigit((unsigned char)*p))
			return -EINVAL;
	}
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		if (strcmp(p, units[i].unit))
			continue;
		__u64 part = (__u64)((unsigned __int128)frac * units[i].ns / scale);

		if (whole > (UINT64_MAX - part) / units[i].ns)
			return -EINVAL;
		*ns = whole * units[i].ns + part;
		return 0;
	}
	return -EINVAL;
}

int kc_parse_count(const char *s, unsigned long *n)
{
	unsigned long long v;
	const char *end;

	if (kc_parse_u64(s, &end, &v) || *end || v == 0 || v > ULONG_MAX)
		return -EINVAL;
	*n = (unsigned long)v;
	return 0;
}

int kc_parse_pid(const char *s, pid_t *pid)
{
	unsigned long long v;
	const char *end;

	if (kc_parse_u64(s, &end, &v) || *end || v == 0 || v > INT_MAX)
		return -EINVAL;
	*pid = (pid_t)v;
	return 0;
}

const char *kc_signal_name(int sig, char *buf, size_t len)
{
	const char *abbrev = sigabbrev_np(sig);

	if (abbrev)
		snprintf(buf, len, "%s", abbrev);
	else
		snprintf(buf, len, "%d", sig);
	return buf;
}

/* "USR1", "SIGUSR1", "usr1" or "10". */
int kc_parse_signal(const char *s, int *sig)
{
	unsigned long long v;
	const char *end;

	if (!kc_parse_u64(s, &end, &v)) {
		if (*end || v < 1 || v >= (unsigned long long)SIGRTMAX + 1)
			return -EINVAL;
		*sig = (int)v;
		return 0;
	}
	if (!strncasecmp(s, "SIG", 3))
		s += 3;
	for (int i = 1; i < NSIG; i++) {
		const char *abbrev = sigabbrev_np(i);

		if (abbrev && !strcasecmp(s, abbrev)) {
			*sig = i;
			return 0;
		}
	}
	return -EINVAL;
}

static int kc_parse_port(const char *s, in_port_t *port)
{
	unsigned long long v;
	const char *end;

	if (kc_parse_u64(s, &end, &v) || *end || v > 65535)
		return -EINVAL;
	*port = htons((in_port_t)v);
	return 0;
}

/* "127.0.0.1:8080", "[::1]:8080" (port 0: any free port). */
int kc_parse_addr(const char *s, struct sockaddr_storage *ss, socklen_t *len)
{
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
	struct sockaddr_in *in = (struct sockaddr_in *)ss;
	const char *colon;
	char host[INET6_ADDRSTRLEN + 2];

	memset(ss, 0, sizeof(*ss));
	if (*s == '[') {
		colon = strstr(s, "]:");
		if (!colon || (size_t)(colon - s - 1) >= sizeof(host))
			return -EINVAL;
		snprintf(host, sizeof(host), "%.*s", (int)(colon - s - 1), s + 1);
		in6->sin6_family = AF_INET6;
		*len = sizeof(*in6);
		if (inet_pton(AF_INET6, host, &in6->sin6_addr) != 1)
			return -EINVAL;
		return kc_parse_port(colon + 2, &in6->sin6_port);
	}
	colon = strrchr(s, ':');
	if (!colon || (size_t)(colon - s) >= sizeof(host))
		return -EINVAL;
	snprintf(host, sizeof(host), "%.*s", (int)(colon - s), s);
	in->sin_family = AF_INET;
	*len = sizeof(*in);
	if (inet_pton(AF_INET, host, &in->sin_addr) != 1)
		return -EINVAL;
	return kc_parse_port(colon + 1, &in->sin_port);
}

const char *kc_addr_str(const struct sockaddr *sa, char *buf, size_t len)
{
	const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
	const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
	char host[INET6_ADDRSTRLEN];

	if (sa->sa_family == AF_INET) {
		inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host));
		snprintf(buf, len, "%s:%u", host, ntohs(in->sin_port));
	} else if (sa->sa_family == AF_INET6) {
		inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host));
		snprintf(buf, len, "[%s]:%u", host, ntohs(in6->sin6_port));
	} else {
		snprintf(buf, len, "?");
	}
	return buf;
}
