// SPDX-License-Identifier: LGPL-2.1 OR BSD-2-Clause
/*
 * A socket's protocol, state and addresses, from the tables of the process's own network
 * namespace (/proc/PID/net/{tcp,tcp6,udp,udp6,unix}), matched by the inode number that
 * /proc/PID/fd/FD names ("socket:[INODE]"). The tables are read once per process and
 * searched by inode, after every descriptor was looked at: a server that opens and closes
 * connections fast reuses a number within the time it takes to read the tables, and its
 * socket would then be newer than what they hold. An AF_UNIX peer is not in the table: only
 * the local path is known.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "keventctl.h"

struct kc_netent {
	unsigned long ino;
	char proto[8], state[16], local[80], remote[80];
};

struct kc_netns {
	struct kc_netent *e;
	size_t n;
};

/* include/net/tcp_states.h; UDP uses ESTABLISHED (connected) and CLOSE. */
static const char *const kc_tcp_states[] = {
	"?",	      "ESTABLISHED", "SYN_SENT",	"SYN_RECV",  "FIN_WAIT1",
	"FIN_WAIT2", "TIME_WAIT",   "CLOSE",	"CLOSE_WAIT", "LAST_ACK",
	"LISTEN",    "CLOSING",	    "NEW_SYN_RECV",
};

/*
 * The kernel prints each 32-bit word of an address with %08X as the host reads it: parsing
 * each word back and storing it in host order gives the bytes of the address.
 */
static void kc_hex_addr(const char *hex, unsigned int port, bool v6, char *out, size_t len)
{
	struct sockaddr_in6 in6 = { .sin6_family = AF_INET6, .sin6_port = htons((in_port_t)port) };
	struct sockaddr_in in = { .sin_family = AF_INET, .sin_port = htons((in_port_t)port) };
	char word[9] = { 0 };

	if (!v6) {
		in.sin_addr.s_addr = (__u32)strtoul(hex, NULL, 16);
		kc_addr_str((struct sockaddr *)&in, out, len);
		return;
	}
	for (int i = 0; i < 4; i++) {
		memcpy(word, hex + 8 * i, 8);
		in6.sin6_addr.s6_addr32[i] = (__u32)strtoul(word, NULL, 16);
	}
	kc_addr_str((struct sockaddr *)&in6, out, len);
}

static struct kc_netent *kc_netns_add(struct kc_netns *ns)
{
	ns->e = kc_grow(ns->e, (unsigned int)ns->n, sizeof(*ns->e));
	return &ns->e[ns->n++];
}

static void kc_inet_line(struct kc_netns *ns, const char *proto, const char *line)
{
	char la[33], ra[33];
	unsigned int lp, rp, st;
	unsigned long ino;
	bool v6 = proto[3] == '6';
	struct kc_netent *e;

	/* sl local rem st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode */
	if (sscanf(line, " %*d: %32[0-9A-Fa-f]:%x %32[0-9A-Fa-f]:%x %x %*x:%*x %*x:%*x %*x %*u %*d "
			 "%lu",
		   la, &lp, ra, &rp, &st, &ino) != 6 ||
	    strlen(la) != (v6 ? 32 : 8) || strlen(ra) != strlen(la) || !ino)
		return; /* inode 0: TIME_WAIT and the like, which no descriptor names */
	e = kc_netns_add(ns);
	e->ino = ino;
	snprintf(e->proto, sizeof(e->proto), "%s", proto);
	snprintf(e->state, sizeof(e->state), "%s",
		 st < sizeof(kc_tcp_states) / sizeof(kc_tcp_states[0]) ? kc_tcp_states[st] : "?");
	kc_hex_addr(la, lp, v6, e->local, sizeof(e->local));
	kc_hex_addr(ra, rp, v6, e->remote, sizeof(e->remote));
}

/* Num RefCount Protocol Flags Type St Inode [Path] */
static void kc_unix_line(struct kc_netns *ns, const char *proto, const char *line)
{
	static const char *const types[] = { "?", "stream", "dgram", "raw", "rdm", "seqpacket" };
	static const char *const states[] = { "?", "UNCONNECTED", "CONNECTING", "CONNECTED",
					      "DISCONNECTING" };
	unsigned int flags, type, st;
	char path[80] = "";
	unsigned long ino;
	struct kc_netent *e;

	(void)proto;
	if (sscanf(line, "%*s %*x %*x %x %x %x %lu %79s", &flags, &type, &st, &ino, path) < 4)
		return;
	e = kc_netns_add(ns);
	e->ino = ino;
	snprintf(e->proto, sizeof(e->proto), "unix");
	/* __SO_ACCEPTCON: a listener, whatever its state says. */
	snprintf(e->state, sizeof(e->state), "%s %s", type < 6 ? types[type] : "?",
		 flags & 0x10000 ? "LISTEN" : st < 5 ? states[st] : "?");
	snprintf(e->local, sizeof(e->local), "%s", path);
}

static void kc_netns_table(struct kc_netns *ns, pid_t pid, const char *name,
			   void (*parse)(struct kc_netns *, const char *, const char *))
{
	char path[64], line[512];
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/net/%s", pid, name);
	f = fopen(path, "r");
	if (!f)
		return;
	if (fgets(line, sizeof(line), f)) /* the header */
		while (fgets(line, sizeof(line), f))
			parse(ns, name, line);
	fclose(f);
}

static int kc_netent_cmp(const void *a, const void *b)
{
	const struct kc_netent *x = a, *y = b;

	return x->ino < y->ino ? -1 : x->ino > y->ino;
}

struct kc_netns *kc_netns_load(pid_t pid)
{
	struct kc_netns *ns = calloc(1, sizeof(*ns));

	if (!ns)
		return NULL;
	kc_netns_table(ns, pid, "tcp", kc_inet_line);
	kc_netns_table(ns, pid, "tcp6", kc_inet_line);
	kc_netns_table(ns, pid, "udp", kc_inet_line);
	kc_netns_table(ns, pid, "udp6", kc_inet_line);
	kc_netns_table(ns, pid, "unix", kc_unix_line);
	if (ns->n)
		qsort(ns->e, ns->n, sizeof(*ns->e), kc_netent_cmp);
	return ns;
}

void kc_netns_free(struct kc_netns *ns)
{
	if (ns)
		free(ns->e);
	free(ns);
}

void kc_netns_inode(pid_t pid, struct kc_sock_row *r)
{
	char proc[64], link[64];
	ssize_t n;

	snprintf(proc, sizeof(proc), "/proc/%d/fd/%d", pid, r->v.fd);
	n = readlink(proc, link, sizeof(link) - 1);
	if (n <= 0) {
		/* Closed without REMOVE: the library lets the interest go soon (K17). */
		snprintf(r->object, sizeof(r->object), "(closed)");
		return;
	}
	link[n] = '\0';
	/* Until it is found in the tables, what the descriptor names is all there is to say. */
	snprintf(r->object, sizeof(r->object), "%s", link);
	if (sscanf(link, "socket:[%lu]", &r->ino) != 1)
		r->ino = 0;
}

void kc_netns_describe(struct kc_netns *ns, struct kc_sock_row *r)
{
	struct kc_netent key = { .ino = r->ino }, *e = NULL;

	if (ns && ns->n && r->ino)
		e = bsearch(&key, ns->e, ns->n, sizeof(*ns->e), kc_netent_cmp);
	if (!e)
		return;
	r->object[0] = '\0';
	snprintf(r->proto, sizeof(r->proto), "%s", e->proto);
	snprintf(r->state, sizeof(r->state), "%s", e->state);
	snprintf(r->local, sizeof(r->local), "%s", e->local);
	snprintf(r->remote, sizeof(r->remote), "%s", e->remote);
}
