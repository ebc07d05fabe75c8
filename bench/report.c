// SPDX-License-Identifier: LGPL-2.1 OR BSD-2-Clause
/*
 * The combined table of a `make bench` run: reads the JSON lines the bench programs
 * appended (build/bench.json, or the file named) and prints every row again, as text or
 * (-m) as a Markdown table for the README. Not a benchmark: `make bench` runs it last.
 *
 * It reads only what bench.h writes (one flat object a line, keys in a fixed order with
 * no nesting but the two spreads), so a few lines of matching do instead of a JSON parser.
 * Reference rows print as such; a row without a ratio prints its note, and a line written
 * before rows carried notes gets one saying so.
 *
 *   build/bench/report [-m] [file]
 */
#include "bench.h"

/* The text right after "key": in line, or NULL. */
static const char *field(const char *line, const char *key)
{
	char pat[64];
	const char *p;

	snprintf(pat, sizeof(pat), "\"%s\":", key);
	p = strstr(line, pat);
	return p ? p + strlen(pat) : NULL;
}

static double num(const char *line, const char *key)
{
	const char *p = field(line, key);

	return p && strncmp(p, "null", 4) ? strtod(p, NULL) : NAN;
}

static void str(const char *line, const char *key, char *out, size_t len)
{
	const char *p = field(line, key), *end;

	out[0] = '\0';
	if (!p || *p != '"' || !(end = strchr(p + 1, '"')))
		return;
	snprintf(out, len, "%.*s", (int)(end - p - 1), p + 1);
}

static void spread(const char *line, const char *key, double *lo, double *hi)
{
	const char *p = field(line, key);
	char *end;

	*lo = *hi = NAN;
	if (!p || *p != '[')
		return;
	*lo = strtod(p + 1, &end);
	if (*end == ',')
		*hi = strtod(end + 1, NULL);
}

int main(int argc, char **argv)
{
	bool markdown = argc > 1 && !strcmp(argv[1], "-m");
	const char *path = argc > 1 + markdown ? argv[1 + markdown] : NULL;
	char line[2048], buf[4096];
	unsigned int rows = 0;
	FILE *f;

	if (!path)
		path = bench_json_path(buf, sizeof(buf));
	f = fopen(path, "r");
	if (!f)
		bench_die("report: cannot read %s: %s", path, strerror(errno));
	if (markdown)
		printf(
		    "| scenario | unit | libkevent [min..max] | baseline [min..max] | baseline | "
		    "ratio | higher is better |\n|---|---|---|---|---|---|---|\n");
	else
		bench_print_header(stdout);
	while (fgets(line, sizeof(line), f)) {
		struct bench_fig g = {0};

		if (!field(line, "scenario"))
			continue;
		str(line, "scenario", g.scenario, sizeof(g.scenario));
		str(line, "unit", g.unit, sizeof(g.unit));
		str(line, "baseline_name", g.baseline_name, sizeof(g.baseline_name));
		g.kevent = num(line, "kevent");
		g.baseline = num(line, "baseline");
		g.ratio = num(line, "ratio");
		g.runs = (unsigned int)num(line, "runs");
		g.higher_is_better = !strncmp(field(line, "higher_is_better") ?: "", "true", 4);
		spread(line, "kevent_spread", &g.klo, &g.khi);
		spread(line, "baseline_spread", &g.blo, &g.bhi);
		g.reference = !strncmp(field(line, "reference") ?: "", "true", 4);
		str(line, "note", g.note, sizeof(g.note));
		if ((g.reference || isnan(g.ratio)) && !g.note[0])
			snprintf(g.note, sizeof(g.note),
				 "no reason recorded (an older bench line)");
		bench_print_fig(stdout, &g, markdown);
		rows++;
	}
	fclose(f);
	return rows ? 0 : 1;
}
