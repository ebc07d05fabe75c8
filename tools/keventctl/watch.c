// SPDX-License-Identifier: LGPL-2.1 OR BSD-2-Clause
/*
 * keventctl watch: one queue, an interest per source named on the command line, and a line
 * per event, like `inotifywait -m` but for every source the library has. A client of the
 * public API only (kevent.h, kevent_inode.h).
 *
 * One line per event; an inode event whose entries the log names gives one line per entry,
 * and a listening socket one per connection it accepted, so that --count counts what a
 * reader sees: events merge in the queue (K12), three files created at once can be one
 * event. Every interest is ALWAYS_QUEUE: a source ready at once is reported, not refused
 * (K9).
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "keventctl.h"

#define KC_INODE_ALL                                                                               \
	(KEVENT_INODE_CREATE | KEVENT_INODE_REMOVE | KEVENT_INODE_MODIFY | KEVENT_INODE_ATTRIB)
#define KC_BATCH	 64
#define NSEC_PER_SEC	 1000000000ULL

struct kc_src {
	struct ukevent uk; /* as registered; user_u64 is the source's index */
	const char *arg;   /* as given: the path, the duration */
	char buf[INET6_ADDRSTRLEN + 16]; /* or a name made here: the signal's, the address */
	int fd;		   /* the watched file or the listening socket, or -1 */
	bool dir;	   /* a watched directory: the log names what changed */
	bool live;	   /* registered, and no BROKEN event ended it */
};

struct kc_watch {
	struct kc_src *src;
	unsigned int nsrc, live;
	bool json, quiet;
	unsigned long count; /* 0: no limit */
	unsigned long seen;  /* lines printed */
	__u64 timeout_ns;
	bool timeout;
	int q;
};

/* What one line says: an event, and the entry or connection it is about. */
struct kc_line {
	const struct kc_src *src;
	const struct ukevent *ev;
	const struct kevent_inode_entry *entry; /* an inode event's entry, or NULL */
	const char *peer;			/* a connection accepted, or NULL */
};

/* How lines name a source. Not a pointer kept in it: the array moves as it grows. */
static const char *kc_label(const struct kc_src *s)
{
	return s->buf[0] ? s->buf : s->arg;
}

static struct kc_src *kc_src_new(struct kc_watch *w, const char *arg)
{
	struct kc_src *src;

	w->src = kc_grow(w->src, w->nsrc, sizeof(*w->src));
	src = &w->src[w->nsrc];
	src->arg = arg;
	src->fd = -1;
	src->uk.req_flags = KEVENT_REQ_ALWAYS_QUEUE;
	src->uk.user_u64 = w->nsrc++;
	return src;
}

static int kc_src_file(struct kc_watch *w, const char *path)
{
	struct kc_src *s = kc_src_new(w, path);
	struct stat sb;

	s->fd = open(path, O_RDONLY | O_CLOEXEC);
	if (!*path || s->fd < 0 || fstat(s->fd, &sb)) {
		kc_err("--file '%s': %s", path, *path ? strerror(errno) : "empty path");
		return -EINVAL;
	}
	s->dir = S_ISDIR(sb.st_mode);
	s->uk.type = KEVENT_INODE;
	s->uk.id.raw[0] = (__u32)s->fd;
	s->uk.event = KC_INODE_ALL;
	return 0;
}

static int kc_src_timer(struct kc_watch *w, const char *arg)
{
	struct kc_src *s = kc_src_new(w, arg);
	__u64 ns;

	if (kc_parse_duration(arg, &ns) || !ns || ns / NSEC_PER_SEC > UINT32_MAX) {
		kc_err("--timer: bad duration '%s' (e.g. 500ms, 2s; more than 0)", arg);
		return -EINVAL;
	}
	s->uk.type = KEVENT_TIMER;
	s->uk.id.raw[0] = (__u32)(ns / NSEC_PER_SEC);
	s->uk.id.raw[1] = (__u32)(ns % NSEC_PER_SEC);
	s->uk.event = KEVENT_TIMER_FIRED;
	return 0;
}

static int kc_src_signal(struct kc_watch *w, const char *arg)
{
	struct kc_src *s = kc_src_new(w, arg);
	int sig;

	if (kc_parse_signal(arg, &sig)) {
		kc_err("--signal: unknown signal '%s' (e.g. USR1, SIGHUP, 10)", arg);
		return -EINVAL;
	}
	kc_signal_name(sig, s->buf, sizeof(s->buf));
	s->uk.type = KEVENT_SIGNAL;
	/* Reported only through the queue: USR1's default action would end the watch. */
	s->uk.id.raw_u64 = (__u64)sig | KEVENT_SIGNAL_NOMASK;
	s->uk.event = KEVENT_SIGNAL_DELIVERY;
	return 0;
}

static int kc_src_listen(struct kc_watch *w, const char *arg)
{
	struct kc_src *s = kc_src_new(w, arg);
	struct sockaddr_storage ss;
	socklen_t len;
	int one = 1;

	if (kc_parse_addr(arg, &ss, &len)) {
		kc_err("--socket-listen: bad address '%s' (e.g. 127.0.0.1:8080, [::1]:8080)", arg);
		return -EINVAL;
	}
	s->fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (s->fd < 0 || setsockopt(s->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    bind(s->fd, (struct sockaddr *)&ss, len) || listen(s->fd, SOMAXCONN) ||
	    getsockname(s->fd, (struct sockaddr *)&ss, &len)) {
		kc_err("--socket-listen %s: %s", arg, strerror(errno));
		return -EINVAL;
	}
	/* With port 0 the kernel chose one: lines name the address really listened on. */
	kc_addr_str((struct sockaddr *)&ss, s->buf, sizeof(s->buf));
	s->uk.type = KEVENT_SOCKET;
	s->uk.id.raw[0] = (__u32)s->fd;
	s->uk.event = KEVENT_SOCKET_ACCEPT;
	return 0;
}

enum {
	OPT_FILE = 256,
	OPT_TIMER,
	OPT_SIGNAL,
	OPT_LISTEN,
};

static int kc_watch_args(struct kc_watch *w, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "file", required_argument, NULL, OPT_FILE },
		{ "timer", required_argument, NULL, OPT_TIMER },
		{ "signal", required_argument, NULL, OPT_SIGNAL },
		{ "socket-listen", required_argument, NULL, OPT_LISTEN },
		{ "json", no_argument, NULL, 'j' },
		{ "count", required_argument, NULL, 'c' },
		{ "timeout", required_argument, NULL, 't' },
		{ "quiet", no_argument, NULL, 'q' },
		{ NULL, 0, NULL, 0 },
	};
	int c, err = 0;

	while (!err && (c = kc_getopt(argc, argv, ":jc:t:q", opts, "watch")) != -1) {
		if (c == OPT_FILE)
			err = kc_src_file(w, optarg);
		else if (c == OPT_TIMER)
			err = kc_src_timer(w, optarg);
		else if (c == OPT_SIGNAL)
			err = kc_src_signal(w, optarg);
		else if (c == OPT_LISTEN)
			err = kc_src_listen(w, optarg);
		else if (c == 'j')
			w->json = true;
		else if (c == 'q')
			w->quiet = true;
		else if (c == 'c' && (err = kc_parse_count(optarg, &w->count)))
			kc_err("--count: expected a number above 0, not '%s'", optarg);
		else if (c == 't' && (err = kc_parse_duration(optarg, &w->timeout_ns)))
			kc_err("--timeout: bad duration '%s' (e.g. 500ms, 2s)", optarg);
		else if (c == 't')
			w->timeout = true;
		else if (c == '?')
			err = -EINVAL;
	}
	if (!err && optind < argc) {
		kc_err("watch: unexpected argument '%s' (keventctl --help)", argv[optind]);
		err = -EINVAL;
	}
	if (!err && !w->nsrc) {
		kc_err("watch: nothing to watch (--file, --timer, --signal, --socket-listen)");
		err = -EINVAL;
	}
	return err;
}

/* Every source in one kevent_ctl(); the first that fails is the one error said. */
static int kc_watch_add(struct kc_watch *w)
{
	struct ukevent *uk = calloc(w->nsrc, sizeof(*uk));
	unsigned int i;
	int n;

	if (!uk) {
		kc_err("out of memory");
		return -ENOMEM;
	}
	for (i = 0; i < w->nsrc; i++)
		uk[i] = w->src[i].uk;
	n = kevent_ctl(w->q, KEVENT_CTL_ADD, w->nsrc, uk);
	if (n < 0)
		kc_err("kevent_ctl: %s", strerror(-n));
	for (i = 0; n >= 0 && i < w->nsrc; i++) {
		if (uk[i].ret_flags & KEVENT_RET_BROKEN) {
			kc_err("cannot watch %s: %s", kc_label(&w->src[i]),
			       strerror(-(int)uk[i].ret_data[1]));
			n = -EINVAL;
		}
		w->src[i].live = true;
	}
	free(uk);
	w->live = w->nsrc;
	return n < 0 ? n : 0;
}

static int kc_watch_start(struct kc_watch *w)
{
	unsigned int i;

	/* Without privilege, each source takes its syscall path (K26): the library chooses. */
	w->q = kevent_init(NULL, 0, 0);
	if (w->q < 0) {
		kc_err("kevent_init: %s", strerror(-w->q));
		return w->q;
	}
	if (kc_watch_add(w))
		return -EINVAL;
	if (w->quiet)
		return 0;
	/* Port 0: where to connect is known only now. */
	for (i = 0; i < w->nsrc; i++)
		if (w->src[i].uk.type == KEVENT_SOCKET)
			fprintf(stderr, "keventctl: listening on %s\n", kc_label(&w->src[i]));
	fprintf(stderr, "keventctl: watches established\n");
	return 0;
}

/* The time of a line, now: local time for people, UTC (ISO 8601) for JSON. */
static const char *kc_now(bool utc, char *buf, size_t len)
{
	struct timespec ts;
	struct tm tm;
	size_t n;

	clock_gettime(CLOCK_REALTIME, &ts);
	if (utc)
		gmtime_r(&ts.tv_sec, &tm);
	else
		localtime_r(&ts.tv_sec, &tm);
	n = strftime(buf, len, utc ? "%Y-%m-%dT%H:%M:%S" : "%H:%M:%S", &tm);
	snprintf(buf + n, len - n, ".%06ld%s", ts.tv_nsec / 1000, utc ? "Z" : "");
	return buf;
}

static void kc_line_json(const struct kc_line *l)
{
	const struct ukevent *ev = l->ev;
	struct kc_json j;
	char now[64];

	kc_json_init(&j, stdout);
	kc_json_open(&j, NULL, '{');
	kc_json_str(&j, "time", kc_now(true, now, sizeof(now)));
	kc_json_str(&j, "type", kc_type_name(ev->type));
	kc_json_str(&j, "source", kc_label(l->src));
	kc_json_open(&j, "id", '[');
	kc_json_u64(&j, NULL, ev->id.raw[0]);
	kc_json_u64(&j, NULL, ev->id.raw[1]);
	kc_json_close(&j, ']');
	/* An entry's line is about the entry: its event, whichever event brought it. */
	kc_json_bits(&j, "events", kc_event_bits(ev->type), l->entry ? l->entry->event : ev->event);
	kc_json_bits(&j, "ret_flags", kc_ret_bits, ev->ret_flags);
	kc_json_open(&j, "ret_data", '[');
	kc_json_u64(&j, NULL, ev->ret_data[0]);
	kc_json_u64(&j, NULL, ev->ret_data[1]);
	kc_json_close(&j, ']');
	if (ev->ret_flags & KEVENT_RET_BROKEN)
		kc_json_str(&j, "error", strerror(-(int)ev->ret_data[1]));
	if (l->entry) {
		kc_json_open(&j, "entry", '{');
		kc_json_bool(&j, "lost", !l->entry->event); /* entries were dropped: rescan */
		kc_json_u64(&j, "ino", l->entry->ino);
		if (l->entry->name_len)
			kc_json_str(&j, "name", l->entry->name);
		else
			kc_json_null(&j, "name");
		kc_json_close(&j, '}');
	}
	if (l->peer)
		kc_json_str(&j, "peer", l->peer);
	kc_json_close(&j, '}');
	kc_json_end(&j);
}

/* TIME TYPE SOURCE EVENTS [what it is about], as inotifywait's "DIR EVENTS NAME". */
static void kc_line_text(const struct kc_line *l)
{
	const struct ukevent *ev = l->ev;
	char now[64], bits[128];
	__u32 events = l->entry ? l->entry->event : ev->event;

	printf("%s %s %s ", kc_now(false, now, sizeof(now)), kc_type_name(ev->type),
	       kc_label(l->src));
	if (l->entry && !events)
		printf("LOST (entries dropped: rescan)");
	else
		fputs(kc_bits_str(kc_event_bits(ev->type), events, bits, sizeof(bits)), stdout);
	if (l->entry && l->entry->name_len)
		printf(" %s", l->entry->name);
	else if (l->entry && l->entry->ino)
		printf(" ino %llu", (unsigned long long)l->entry->ino);
	if (l->peer)
		printf(" from %s", l->peer);
	if (ev->type == KEVENT_TIMER)
		printf(" expirations %u", ev->ret_data[1]);
	if (ev->type == KEVENT_SIGNAL)
		printf(" arrivals %u", ev->ret_data[0]);
	if (ev->ret_flags & KEVENT_RET_BROKEN)
		printf(" BROKEN (%s)", strerror(-(int)ev->ret_data[1]));
	putchar('\n');
}

/* Print a line; true once --count lines are out. */
static bool kc_emit(struct kc_watch *w, const struct kc_src *s, const struct ukevent *ev,
		    const struct kevent_inode_entry *entry, const char *peer)
{
	struct kc_line l = { .src = s, .ev = ev, .entry = entry, .peer = peer };

	if (w->json)
		kc_line_json(&l);
	else
		kc_line_text(&l);
	w->seen++;
	return w->count && w->seen >= w->count;
}

/*
 * A directory's event that the log names no entry for: its own change (ATTRIB, ret_data
 * naming no child), or one whose entries went out with an earlier event. The log is read
 * when an event is delivered, and holds what happened until then: entries of changes whose
 * event is still on its way, which then comes with nothing left to name.
 */
static bool kc_dir_own(const struct ukevent *ev)
{
	return (ev->event & KEVENT_INODE_ATTRIB) && !ev->ret_data[0] && !ev->ret_data[1];
}

/* One line per entry the log names (kevent_inode_entries()), or one for the event. */
static bool kc_on_inode(struct kc_watch *w, const struct kc_src *s, const struct ukevent *ev)
{
	struct kevent_inode_entry ent[16];
	bool any = false;
	int n, i;

	while ((n = kevent_inode_entries(w->q, ev, ent, 16)) > 0) {
		for (i = 0; i < n; i++)
			if (kc_emit(w, s, ev, &ent[i], NULL))
				return true;
		any = true;
	}
	if (!(ev->ret_flags & KEVENT_RET_BROKEN) && (any || (s->dir && !kc_dir_own(ev))))
		return false;
	return kc_emit(w, s, ev, NULL, NULL);
}

/* Accept what waits, one line per connection (closed at once), or one for the event. */
static bool kc_on_listener(struct kc_watch *w, const struct kc_src *s, const struct ukevent *ev)
{
	struct sockaddr_storage ss;
	char peer[INET6_ADDRSTRLEN + 16];
	bool any = false;
	socklen_t len;
	int c;

	for (;;) {
		len = sizeof(ss);
		c = accept4(s->fd, (struct sockaddr *)&ss, &len, SOCK_CLOEXEC);
		if (c < 0)
			break;
		close(c);
		any = true;
		kc_addr_str((struct sockaddr *)&ss, peer, sizeof(peer));
		if (kc_emit(w, s, ev, NULL, peer))
			return true;
	}
	return !any && kc_emit(w, s, ev, NULL, NULL);
}

static bool kc_on_event(struct kc_watch *w, const struct ukevent *ev)
{
	struct kc_src *s;
	bool done;

	if (ev->user_u64 >= w->nsrc)
		return false; /* not one of ours: cannot happen, and is not worth a crash */
	s = &w->src[ev->user_u64];
	if (ev->type == KEVENT_INODE)
		done = kc_on_inode(w, s, ev);
	else if (ev->type == KEVENT_SOCKET && !(ev->ret_flags & KEVENT_RET_BROKEN))
		done = kc_on_listener(w, s, ev);
	else
		done = kc_emit(w, s, ev, NULL, NULL);
	/* A BROKEN event is the interest's last: it was removed (K17, K18). */
	if ((ev->ret_flags & KEVENT_RET_BROKEN) && s->live) {
		s->live = false;
		w->live--;
	}
	return done;
}

/* What is left of --timeout, as kevent_get_events() takes it; forever without one. */
static struct timespec kc_remaining(const struct kc_watch *w, __u64 deadline)
{
	__u64 now = kc_mono_ns(), left = deadline > now ? deadline - now : 0;

	if (!w->timeout)
		return (struct timespec){ .tv_sec = -1 };
	return (struct timespec){ .tv_sec = (time_t)(left / NSEC_PER_SEC),
				  .tv_nsec = (long)(left % NSEC_PER_SEC) };
}

static int kc_watch_loop(struct kc_watch *w)
{
	__u64 deadline = kc_mono_ns() + w->timeout_ns;
	struct ukevent ev[KC_BATCH];
	int n, i;

	while (w->live) {
		n = kevent_get_events(w->q, 1, KC_BATCH, kc_remaining(w, deadline), ev, 0);
		if (n == -EINTR)
			continue;
		if (n < 0) {
			kc_err("kevent_get_events: %s", strerror(-n));
			return KC_EXIT_ERROR;
		}
		for (i = 0; i < n; i++)
			if (kc_on_event(w, &ev[i]))
				return KC_EXIT_OK;
		if (!n && w->timeout && kc_mono_ns() >= deadline)
			break;
	}
	return w->seen ? KC_EXIT_OK : KC_EXIT_TIMEOUT;
}

int kc_watch(int argc, char **argv)
{
	struct kc_watch w = { .q = -1 };
	int status = KC_EXIT_ERROR;

	if (!kc_watch_args(&w, argc, argv) && !kc_watch_start(&w))
		status = kc_watch_loop(&w);
	if (w.q >= 0)
		kevent_close(w.q);
	for (unsigned int i = 0; i < w.nsrc; i++)
		if (w.src[i].fd >= 0)
			close(w.src[i].fd);
	free(w.src);
	return status;
}
