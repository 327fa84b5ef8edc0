/*
 * insncount: a minimal QEMU TCG plugin that counts executed guest
 * instructions, for scripts/pi-insns (instructions per audio second of the
 * aarch64 `hushd process` under qemu-aarch64).
 *
 * Counting is per translation block: when a block is translated, its
 * instruction count n is attached to it, and every execution of the block
 * adds n to the total. In the default "inline" mode the add is an inline
 * TCG op on one global counter (fast, but not atomic: exact for a
 * single-threaded guest; with several guest threads running at once,
 * concurrent adds can be lost). "mode=atomic" uses a callback per block
 * execution with an atomic add instead (slower, exact with threads). A
 * block left early (a fault or exception in its middle) still counts in
 * full; for ordinary user code that is negligible.
 *
 * At exit it prints to stderr:
 *   insncount: <total> insns, <k> vcpus, mode=<inline|atomic>
 * and, with "out=FILE", writes the total alone to FILE.
 *
 * Usage: qemu-aarch64 -plugin ./libinsncount.so[,mode=atomic][,out=FILE] PROG
 *
 * Build (scripts/pi-insns does this):
 *   gcc -O2 -shared -fPIC -fvisibility=hidden -I DIR_WITH_qemu-plugin.h \
 *       $(pkg-config --cflags glib-2.0) -o libinsncount.so pi-insns.c
 *
 * qemu-plugin.h is not part of this repository and Debian ships it in no
 * binary package. It is QEMU's public plugin API header,
 * include/qemu/qemu-plugin.h, licensed GPL-2.0-or-later (Copyright (C)
 * 2017 Emilio G. Cota, (C) 2019 Linaro). scripts/pi-insns extracts it from
 * the Debian source package of the installed QEMU (`apt-get source
 * --download-only qemu`, orig tarball qemu_7.2+dfsg.orig.tar.xz on Debian
 * 12; Debian's patches do not change the header). It must match the QEMU
 * that loads the plugin: QEMU 7.2 expects QEMU_PLUGIN_VERSION 1 and checks
 * the qemu_plugin_version symbol below against it.
 *
 * This file uses no code from QEMU beyond that header's declarations. As a
 * plugin loaded into QEMU, treat it as GPL-2.0-or-later.
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <glib.h>
#include <qemu-plugin.h>

QEMU_PLUGIN_EXPORT int qemu_plugin_version = QEMU_PLUGIN_VERSION;

static uint64_t total;      /* executed guest instructions */
static unsigned vcpus;      /* vCPUs (guest threads) ever started */
static bool atomic_mode;
static char *out_path;

static void vcpu_init(qemu_plugin_id_t id, unsigned int cpu_index)
{
    (void)id;
    (void)cpu_index;
    __atomic_fetch_add(&vcpus, 1, __ATOMIC_RELAXED);
}

static void tb_exec_atomic(unsigned int cpu_index, void *udata)
{
    (void)cpu_index;
    __atomic_fetch_add(&total, (uint64_t)(uintptr_t)udata, __ATOMIC_RELAXED);
}

static void tb_trans(qemu_plugin_id_t id, struct qemu_plugin_tb *tb)
{
    size_t n = qemu_plugin_tb_n_insns(tb);
    (void)id;
    if (atomic_mode) {
        qemu_plugin_register_vcpu_tb_exec_cb(tb, tb_exec_atomic,
                                             QEMU_PLUGIN_CB_NO_REGS,
                                             (void *)(uintptr_t)n);
    } else {
        qemu_plugin_register_vcpu_tb_exec_inline(tb, QEMU_PLUGIN_INLINE_ADD_U64,
                                                 &total, n);
    }
}

static void at_exit(qemu_plugin_id_t id, void *p)
{
    (void)id;
    (void)p;
    uint64_t t = __atomic_load_n(&total, __ATOMIC_RELAXED);
    unsigned k = __atomic_load_n(&vcpus, __ATOMIC_RELAXED);
    fprintf(stderr, "insncount: %" PRIu64 " insns, %u vcpus, mode=%s\n", t, k,
            atomic_mode ? "atomic" : "inline");
    if (!atomic_mode && k > 1) {
        fprintf(stderr, "insncount: warning: %u guest threads with inline "
                "counting; the total may be low (use mode=atomic)\n", k);
    }
    if (out_path) {
        FILE *f = fopen(out_path, "w");
        if (!f || fprintf(f, "%" PRIu64 "\n", t) < 0 || fclose(f) != 0) {
            fprintf(stderr, "insncount: cannot write %s\n", out_path);
        }
    }
    fflush(stderr);
}

QEMU_PLUGIN_EXPORT int qemu_plugin_install(qemu_plugin_id_t id,
                                           const qemu_info_t *info,
                                           int argc, char **argv)
{
    (void)info;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "mode=inline") == 0) {
            atomic_mode = false;
        } else if (strcmp(a, "mode=atomic") == 0) {
            atomic_mode = true;
        } else if (strncmp(a, "out=", 4) == 0 && a[4] != '\0') {
            out_path = g_strdup(a + 4);
        } else {
            fprintf(stderr, "insncount: unknown option '%s' "
                    "(mode=inline|atomic, out=FILE)\n", a);
            return -1;
        }
    }
    qemu_plugin_register_vcpu_init_cb(id, vcpu_init);
    qemu_plugin_register_vcpu_tb_trans_cb(id, tb_trans);
    qemu_plugin_register_atexit_cb(id, at_exit, NULL);
    return 0;
}
