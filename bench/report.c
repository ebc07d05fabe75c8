// SPDX-License-Identifier: LGPL-2.1 OR BSD-2-Clause
/*
 * The combined table of a `make bench` run: reads the JSON lines the bench programs
 * appended (build/bench.json, or the file named) and prints every row again, as text or
 * (-m) as a Markdown table for the README. Not a benchmark: `make bench` runs it last.
 *
 * bench_fig_read() (bench.h) reads each line back. Reference rows print as such; a row
 * without a ratio prints its note, and a line written before rows carried notes gets one
 * saying so.
 *
 *   build/bench/report [-m] [file]
 */
#include "bench.h"

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
		struct bench_fig g;

		if (!bench_fig_read(line, &g))
			continue;
		if ((g.reference || isnan(g.ratio)) && !g.note[0])
			snprintf(g.note, sizeof(g.note),
				 "no reason recorded (an older bench line)");
		bench_print_fig(stdout, &g, markdown);
		rows++;
	}
	fclose(f);
	return rows ? 0 : 1;
}
