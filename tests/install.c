// SPDX-License-Identifier: LGPL-2.1 OR BSD-2-Clause
/*
 * libkevent installs like a system library: `make install DESTDIR=...` puts the public
 * headers, the static and the shared library (SONAME libkevent.so.0), libkevent.pc, keventctl
 * and the man pages in place; a program finds them through pkg-config alone, links
 * dynamically or statically, and runs; `make uninstall` takes exactly that away. And the
 * shared library exports the public API and nothing else.
 */
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "child_helpers.h"

TestSuite(install, .timeout = KT_TEST_TIMEOUT);

#define KT_OUT 65536

/*
 * A program of a user of the installed library: a queue and a user notification through
 * the public API, which every path serves (K20, K26): the suite runs as root and not.
 */
static const char app_c[] =
	"#include <kevent.h>\n"
	"#include <kevent_inode.h>\n"
	"#include <stdio.h>\n"
	"int main(void)\n"
	"{\n"
	"	struct ukevent ev = { .type = KEVENT_UNOTIFY, .event = 1, .id.raw = { 7 },\n"
	"			      .req_flags = KEVENT_REQ_READY | KEVENT_REQ_ALWAYS_QUEUE };\n"
	"	struct ukevent out;\n"
	"	int q = kevent_init(NULL, 0, 0);\n"
	"\n"
	"	if (q < 0 || kevent_ctl(q, KEVENT_CTL_ADD, 1, &ev) != 1 || ev.ret_flags)\n"
	"		return 1;\n"
	"	if (kevent_get_events(q, 1, 1, (struct timespec){ 10, 0 }, &out, 0) != 1 ||\n"
	"	    out.type != KEVENT_UNOTIFY || out.id.raw[0] != 7 || kevent_close(q))\n"
	"		return 2;\n"
	"	puts(\"event delivered\");\n"
	"	return 0;\n"
	"}\n";

static char stage[64]; /* the DESTDIR, and the program's directory beside it */

static void kt_rm_stage(void)
{
	char out[256];

	if (stage[0])
		kt_sh(out, sizeof(out), "rm -rf '%s'", stage);
	stage[0] = '\0';
}

/* What the staged install holds: its files and symbolic links, one a line, sorted. */
static void kt_staged(char *out, size_t len)
{
	cr_assert_eq(kt_sh(out, len, "cd '%s/root' && find . ! -type d | sort", stage), 0, "%s",
		     out);
}

/* The installed tree: public headers only, the libraries and links, the rest. */
static void kt_check_tree(void)
{
	static const char *const files[] = {
		"./usr/local/include/kevent.h",
		"./usr/local/include/kevent_inode.h",
		"./usr/local/include/ukevent.h",
		"./usr/local/lib/libkevent.a",
		"./usr/local/lib/libkevent.so",
		"./usr/local/lib/libkevent.so.0",
		"./usr/local/lib/libkevent.so.0.1.0",
		"./usr/local/lib/pkgconfig/libkevent.pc",
		"./usr/local/sbin/keventctl",
		"./usr/local/share/man/man3/kevent_init.3",
		"./usr/local/share/man/man3/kevent_inode_entries.3",
		"./usr/local/share/man/man7/libkevent.7",
		"./usr/local/share/man/man8/keventctl.8",
	};
	static char out[KT_OUT];

	kt_staged(out, sizeof(out));
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++)
		kt_has_line(out, files[i]);
	cr_assert_eq(kt_sh(out, sizeof(out), "ls '%s/root/usr/local/include'", stage), 0);
	cr_assert_str_eq(out, "kevent.h\nkevent_inode.h\nukevent.h\n", "headers: %s", out);
	cr_assert_eq(kt_sh(out, sizeof(out),
			   "cd '%s/root/usr/local/lib' && readlink libkevent.so libkevent.so.0 && "
			   "readelf -d libkevent.so.0.1.0 | grep SONAME",
			   stage),
		     0, "%s", out);
	kt_has_line(out, "libkevent.so.0\nlibkevent.so.0.1.0");
	kt_has(out, "Library soname: [libkevent.so.0]");
}

/*
 * Build app.c in the stage's own directory with what pkg-config says of the staged install
 * (PKG_CONFIG_SYSROOT_DIR: the .pc names /usr/local, the files are under DESTDIR), and run it.
 */
static void kt_build_run(const char *name, const char *cc_flags, const char *pc_flags)
{
	static char out[KT_OUT];

	cr_assert_eq(kt_sh(out, sizeof(out),
			   "cd '%s/src' && export PKG_CONFIG_SYSROOT_DIR='%s/root' "
			   "PKG_CONFIG_PATH='%s/root/usr/local/lib/pkgconfig' && "
			   "flags=$(pkg-config %s --cflags --libs libkevent) && "
			   "case \"$flags\" in *'%s'*) echo \"names the build tree: $flags\"; "
			   "exit 1;; esac && cc %s -o %s app.c $flags",
			   stage, stage, stage, pc_flags, KT_SRC_DIR, cc_flags, name),
		     0, "%s: %s", name, out);
	/* The dynamic one finds the staged libkevent.so.0 as it would /usr/local/lib's. */
	cr_assert_eq(kt_sh(out, sizeof(out),
			   "cd '%s/src' && LD_LIBRARY_PATH='%s/root/usr/local/lib' ./%s", stage,
			   stage, name),
		     0, "%s: %s", name, out);
	kt_has_line(out, "event delivered");
}

static void kt_write_app(void)
{
	char path[128];
	FILE *f;

	snprintf(path, sizeof(path), "%s/src/app.c", stage);
	f = fopen(path, "w");
	cr_assert_not_null(f, "%s: %m", path);
	fputs(app_c, f);
	cr_assert_eq(fclose(f), 0);
}

Test(install, make_install_pkg_config_dynamic_and_static,
     .description = "make install DESTDIR=...: public headers, static and shared library "
		    "(SONAME libkevent.so.0), libkevent.pc, keventctl, man pages; a program "
		    "built through pkg-config alone runs linked dynamically and statically; "
		    "make uninstall removes every file it put",
     .fini = kt_rm_stage)
{
	static char out[KT_OUT];

	snprintf(stage, sizeof(stage), "/tmp/kevent-install-XXXXXX");
	cr_assert_not_null(mkdtemp(stage), "mkdtemp: %m");
	cr_assert_eq(kt_sh(out, sizeof(out), "mkdir '%s/src' && make -s -C '%s' install "
			   "DESTDIR='%s/root'", stage, KT_SRC_DIR, stage),
		     0, "make install: %s", out);
	kt_check_tree();
	kt_write_app();
	kt_build_run("app-dynamic", "", "");
	cr_assert_eq(kt_sh(out, sizeof(out), "cd '%s/src' && readelf -d app-dynamic", stage), 0);
	kt_has(out, "Shared library: [libkevent.so.0]");
	cr_assert_null(strstr(out, "PATH"), "no RPATH or RUNPATH: %s", out);
	kt_build_run("app-static", "-static", "--static");
	cr_assert_eq(kt_sh(out, sizeof(out), "cd '%s/src' && readelf -d app-static", stage), 0);
	kt_has(out, "There is no dynamic section");

	cr_assert_eq(kt_sh(out, sizeof(out), "make -s -C '%s' uninstall DESTDIR='%s/root'",
			   KT_SRC_DIR, stage),
		     0, "make uninstall: %s", out);
	kt_staged(out, sizeof(out));
	cr_assert_str_empty(out, "left after make uninstall:\n%s", out);
}

/*
 * The functions the public headers declare (gcc's -aux-info writes every prototype with the
 * file it comes from), those lib/libkevent.map makes global, and those the built shared
 * library exports: one a line, sorted, in out.
 */
static void kt_api_declared(char *out, size_t len)
{
	cr_assert_eq(kt_sh(out, len,
			   "printf '#include <kevent.h>\\n#include <kevent_inode.h>\\n' | "
			   "gcc -fsyntax-only -aux-info /dev/stdout -I'%s/include' -x c - | "
			   "grep -E '/include/(kevent|kevent_inode|ukevent)\\.h:' | "
			   "sed -E 's/^.*\\*\\/ *//; s/ *\\(.*//; s/.*[ *]//' | sort",
			   KT_SRC_DIR),
		     0, "%s", out);
}

static void kt_api_versioned(char *out, size_t len)
{
	cr_assert_eq(kt_sh(out, len,
			   "sed -n '/global:/,/local:/p' '%s/lib/libkevent.map' | "
			   "grep -E '^[[:space:]]*[a-z_0-9]+;' | tr -d ' \\t;' | sort",
			   KT_SRC_DIR),
		     0, "%s", out);
}

static void kt_api_exported(char *out, size_t len)
{
	cr_assert_eq(kt_sh(out, len,
			   "nm -D --defined-only '%s/libkevent.so' | "
			   "awk '$2 != \"A\" { sub(/@.*/, \"\", $3); print $3 }' | sort",
			   KT_BUILD_DIR),
		     0, "%s", out);
}

Test(install, exported_symbols_are_the_public_api,
     .description = "libkevent.so exports exactly the functions kevent.h and kevent_inode.h "
		    "declare, and lib/libkevent.map names exactly those")
{
	static char declared[4096], versioned[4096], exported[4096];

	kt_api_declared(declared, sizeof(declared));
	kt_api_versioned(versioned, sizeof(versioned));
	kt_api_exported(exported, sizeof(exported));
	kt_has_line(declared, "kevent_init");
	kt_has_line(declared, "kevent_inode_entries");
	cr_assert_str_eq(versioned, declared, "lib/libkevent.map:\n%s\nthe headers:\n%s", versioned,
			 declared);
	cr_assert_str_eq(exported, declared, "exported:\n%s\nthe headers:\n%s", exported,
			 declared);
}
