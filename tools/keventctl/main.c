// SPDX-License-Identifier: LGPL-2.1 OR BSD-2-Clause
/*
 * keventctl COMMAND [OPTIONS]: the commands and the conventions they share. Every error is
 * one line on stderr and exit status 1 (keventctl(8)); usage goes to stdout, asked for.
 */
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "keventctl.h"

static const char usage[] =
	"usage: keventctl watch [--json] [--count N] [--timeout DURATION] [--quiet]\n"
	"                       [--file PATH]... [--timer DURATION]... [--signal SIG]...\n"
	"                       [--socket-listen ADDR:PORT]...\n"
	"       keventctl ls [--json]\n"
	"       keventctl stats [--json] [PID]\n"
	"       keventctl --version | --help\n"
	"Durations: 500ms, 2s, 1.5s, 1m, 100us, 10ns; a bare number is seconds.\n"
	"See keventctl(8).\n";

void kc_err(const char *fmt, ...)
{
	va_list ap;

	fputs("keventctl: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

void *kc_grow(void *array, unsigned int n, size_t size)
{
	array = realloc(array, (n + 1) * size);
	if (!array) {
		kc_err("out of memory");
		exit(KC_EXIT_ERROR);
	}
	memset((char *)array + n * size, 0, size);
	return array;
}

__u64 kc_mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (__u64)ts.tv_sec * 1000000000ULL + (__u64)ts.tv_nsec;
}

int kc_getopt(int argc, char **argv, const char *shorts, const struct option *opts,
	      const char *cmd)
{
	int c;

	/* getopt's own messages would come with ours; it stays quiet, we say one line. */
	opterr = 0;
	c = getopt_long(argc, argv, shorts, opts, NULL);
	if (c == '?' && optopt > 0 && optopt < 128) {
		kc_err("%s: unknown option '-%c' (keventctl --help)", cmd, optopt);
	} else if (c == '?') {
		kc_err("%s: unknown option '%s' (keventctl --help)", cmd, argv[optind - 1]);
	} else if (c == ':') {
		kc_err("%s: option '%s' needs a value", cmd, argv[optind - 1]);
		c = '?';
	}
	return c;
}

int kc_json_flag(int argc, char **argv, const char *cmd, bool *json)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	while ((c = kc_getopt(argc, argv, ":j", opts, cmd)) != -1) {
		if (c == '?')
			return -1;
		*json = true;
	}
	return 0;
}

int main(int argc, char **argv)
{
	static const struct {
		const char *name;
		int (*run)(int argc, char **argv);
	} cmds[] = {
		{ "watch", kc_watch },
		{ "ls", kc_ls },
		{ "stats", kc_stats },
	};
	const char *cmd = argc > 1 ? argv[1] : NULL;

	/* Scripts read the lines as they come: one write per line, even into a pipe. */
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (!cmd) {
		kc_err("no command (keventctl --help)");
		return KC_EXIT_ERROR;
	}
	if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h") || !strcmp(cmd, "help")) {
		fputs(usage, stdout);
		return KC_EXIT_OK;
	}
	if (!strcmp(cmd, "--version")) {
		printf("keventctl (libkevent) %d.%d\n", KEVENT_VERSION_MAJOR, KEVENT_VERSION_MINOR);
		return KC_EXIT_OK;
	}
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
		if (!strcmp(cmd, cmds[i].name))
			return cmds[i].run(argc - 1, argv + 1);
	kc_err("unknown command '%s' (keventctl --help)", cmd);
	return KC_EXIT_ERROR;
}
