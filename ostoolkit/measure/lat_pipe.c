/*
 * lat_pipe.c - reference measurement of context-switch cost over a pipe pair.
 *
 * This is the C reference for ostoolkit's context-switch probe.  It uses the
 * classic "token ping-pong" method (as in lmbench's lat_ctx and
 * `perf bench sched pipe`), written from scratch:
 *
 *   Two tasks, A and B, are each pinned to one CPU.  A one-byte token is
 *   bounced between them over two pipes: A writes pipe1 and reads pipe2, B
 *   reads pipe1 and writes pipe2.  Before each pass of the token a task reads
 *   every byte of its own private working-set buffer, so a switch also has to
 *   pay for refilling the caches.  One round trip therefore costs
 *
 *       2 x (touch + write + read)  +  2 x (switch / wake-up hop)
 *
 *   To isolate the hop, task A also measures a BASELINE on its own CPU with
 *   no partner: write one byte to a private pipe, read it back, touch the
 *   buffer.  That is the same system calls and the same memory traffic with
 *   no switch.  Then
 *
 *       gross per hop = rt / 2
 *       net per hop   = (rt - 2 * base) / 2
 *
 * Build:
 *   gcc -std=c11 -O2 -Wall -Wextra -pthread -o lat_pipe lat_pipe.c
 *
 * Usage:
 *   lat_pipe MODEL CPU_A CPU_B ITERATIONS REPEAT WORKING_SET_KB
 *   lat_pipe MODEL CPU_A CPU_B serve WORKING_SET_KB
 *
 *   MODEL           "process" (B is a fork()ed child) or "thread" (B is a
 *                   pthread in the same process)
 *   CPU_A, CPU_B    CPUs for task A (the main task) and task B; equal values
 *                   mean both tasks share one core
 *   ITERATIONS      round trips (and baseline pairs) per sample
 *   REPEAT          number of measured repetitions
 *   WORKING_SET_KB  private buffer each task reads before each pass; 0 = none
 *
 * Output (stdout), one line per repetition, then one summary line:
 *   rt_ns=<ns per round trip> base_ns=<ns per baseline write+read(+touch)>
 *   net_us_median=<us> gross_us_median=<us>
 * Medians are taken over the per-repetition net and gross values.
 *
 * Serve mode (ostoolkit alternates its own blocks with the harness's): once B
 * is ready, print "ready partner=<pid of B, or its thread id>", then answer
 * each line on stdin, "r N" (N round trips) or "b N" (N baseline write+reads),
 * with the elapsed ns of the N, one line each; end of stdin stops B and exits.
 *
 * Exit status: 0 on success, 2 on bad arguments, 1 if CPU affinity cannot be
 * set or a system call fails during the run.
 */
#define _GNU_SOURCE

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* Bytes exchanged between the tasks. */
#define TOKEN_PING 'p' /* A -> B: "your turn" */
#define TOKEN_PONG 'o' /* B -> A: "your turn" */
#define TOKEN_QUIT 'q' /* A -> B: stop */
#define TOKEN_READY 'r' /* B -> A: pinned and ready */
#define TOKEN_FAIL 'f' /* B -> A: could not pin */

/* Upper bounds that keep the run sane (and the arithmetic in range). */
#define MAX_ITERATIONS 100000000L
#define MAX_REPEAT 100000L
#define MAX_WORKING_SET_KB (1024L * 1024L) /* 1 GiB */

/* Everything one task needs.  Aligned so A's and B's data (both live in one
 * address space in the thread model) never share a cache line. */
struct task {
    _Alignas(64) int cpu;
    unsigned char *buf; /* private working set, NULL when size is 0 */
    size_t buf_len;
    uint64_t sink; /* folded scan results, so the scans cannot be dropped */
    int rd_fd;     /* pipe end this task reads the token from */
    int wr_fd;     /* pipe end this task writes the token to */
};

/* The buffers' addresses are published here.  Because any external function
 * (read, write, ...) could then modify the buffers, the compiler has to redo
 * every touch after every system call instead of hoisting the sum. */
static void *volatile g_escape[2];

static const char *g_prog = "lat_pipe";

static void usage(const char *why)
{
    fprintf(stderr,
            "%s: %s (usage: %s process|thread CPU_A CPU_B ITERATIONS REPEAT WORKING_SET_KB,"
            " or ... CPU_B serve WORKING_SET_KB)\n",
            g_prog, why, g_prog);
    exit(2);
}

/* Fatal run-time error in task A (or the whole process in the thread model). */
static void die(const char *what)
{
    fprintf(stderr, "%s: %s: %s\n", g_prog, what, strerror(errno));
    exit(1);
}

/* Parse a decimal integer in [lo, hi]; anything else is a usage error. */
static long parse_long(const char *s, long lo, long hi, const char *name)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < lo || v > hi) {
        char msg[128];
        snprintf(msg, sizeof msg, "bad %s '%s' (want %ld..%ld)", name, s, lo, hi);
        usage(msg);
    }
    return v;
}

/* Pin the calling thread (pid 0 = caller) to one CPU.  Returns 0 or -1. */
static int pin_self(int cpu)
{
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET((size_t)cpu, &set);
    return sched_setaffinity(0, sizeof set, &set);
}

/* Allocate and fault in a private buffer of kb KiB (non-zero bytes, so the
 * pages are real, not the shared zero page). */
static void alloc_buffer(struct task *t, long kb, int slot)
{
    t->buf_len = (size_t)kb * 1024u;
    t->buf = NULL;
    t->sink = 0;
    if (t->buf_len == 0)
        return;
    t->buf = aligned_alloc(64, t->buf_len);
    if (t->buf == NULL)
        die("aligned_alloc");
    memset(t->buf, 0x5a, t->buf_len);
    g_escape[slot] = t->buf;
}

/* Read every byte of the working set by scanning for a byte it never holds
 * (memchr, vectorised by libc), exactly as ostoolkit's bytearray.find does,
 * and fold the (NULL) result into t->sink.  A no-op for an empty buffer. */
static void touch(struct task *t)
{
    if (t->buf_len == 0)
        return;
    t->sink += (uint64_t)(uintptr_t)memchr(t->buf, 0xff, t->buf_len);
}

static int write_byte(int fd, char c)
{
    return write(fd, &c, 1) == 1 ? 0 : -1;
}

/* Returns the byte read, or -1 on EOF / error. */
static int read_byte(int fd)
{
    unsigned char c;
    return read(fd, &c, 1) == 1 ? c : -1;
}

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

/* ---------------------------------------------------------------- task B -- */

/* B's life: pin, allocate, report ready, then echo the token until told to
 * quit.  Returns 0 on a clean quit, 1 on failure. */
static int task_b_run(struct task *b, long ws_kb)
{
    if (pin_self(b->cpu) != 0) {
        fprintf(stderr, "%s: sched_setaffinity(CPU_B=%d): %s\n", g_prog, b->cpu,
                strerror(errno));
        write_byte(b->wr_fd, TOKEN_FAIL);
        return 1;
    }
    /* Allocated after pinning (and, for a process, after fork) so the pages
     * are B's own and first touched on CPU_B. */
    alloc_buffer(b, ws_kb, 1);
    if (write_byte(b->wr_fd, TOKEN_READY) != 0)
        return 1;

    for (;;) {
        int c = read_byte(b->rd_fd);
        if (c == TOKEN_QUIT)
            break;
        if (c < 0)
            return 1; /* A is gone */
        touch(b);
        if (write_byte(b->wr_fd, TOKEN_PONG) != 0)
            return 1;
    }
    free(b->buf);
    return 0;
}

struct thread_arg {
    struct task *b;
    long ws_kb;
    int status;
    volatile long tid; /* B's thread id, set before B says it is ready */
};

static void *thread_main(void *p)
{
    struct thread_arg *arg = p;
    arg->tid = (long)syscall(SYS_gettid);
    arg->status = task_b_run(arg->b, arg->ws_kb);
    return NULL;
}

/* ---------------------------------------------------------------- task A -- */

/* ITERATIONS x { touch; write private pipe; read it back } on A's CPU, no
 * partner involved.  Returns ns per iteration. */
static double sample_baseline(struct task *a, const int self_pipe[2], long iters)
{
    double t0 = now_ns();
    for (long i = 0; i < iters; i++) {
        touch(a);
        if (write_byte(self_pipe[1], TOKEN_PING) != 0)
            die("write (baseline)");
        if (read_byte(self_pipe[0]) < 0)
            die("read (baseline)");
    }
    return (now_ns() - t0) / (double)iters;
}

/* ITERATIONS full round trips A -> B -> A.  Returns ns per round trip. */
static double sample_round_trip(struct task *a, long iters)
{
    double t0 = now_ns();
    for (long i = 0; i < iters; i++) {
        touch(a);
        if (write_byte(a->wr_fd, TOKEN_PING) != 0)
            die("write (round trip)");
        if (read_byte(a->rd_fd) != TOKEN_PONG) {
            errno = EPIPE;
            die("read (round trip): partner died");
        }
    }
    return (now_ns() - t0) / (double)iters;
}

static int cmp_double(const void *x, const void *y)
{
    double a = *(const double *)x, b = *(const double *)y;
    return (a > b) - (a < b);
}

/* Median of n values (sorts v in place). */
static double median(double *v, long n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2.0;
}

/* Serve mode: answer "r N" and "b N" on stdin with the elapsed ns of N round
 * trips or N baseline write+reads, until end of stdin.  Returns 0 or 1. */
static int serve(struct task *a, const int self_pipe[2], long partner)
{
    printf("ready partner=%ld\n", partner);
    if (fflush(stdout) != 0)
        return 1;
    char line[64];
    while (fgets(line, sizeof line, stdin) != NULL) {
        char cmd = 0;
        long n = 0;
        char extra = 0;
        if (sscanf(line, "%c %ld %c", &cmd, &n, &extra) != 2 || n < 1 || n > MAX_ITERATIONS
            || (cmd != 'r' && cmd != 'b')) {
            fprintf(stderr, "%s: bad command '%.20s' (want 'r N' or 'b N')\n", g_prog, line);
            return 1;
        }
        double per = cmd == 'r' ? sample_round_trip(a, n) : sample_baseline(a, self_pipe, n);
        printf("%.1f\n", per * (double)n);
        if (fflush(stdout) != 0)
            return 1;
    }
    return ferror(stdin) ? 1 : 0;
}

int main(int argc, char **argv)
{
    if (argc > 0 && argv[0] != NULL && argv[0][0] != '\0')
        g_prog = argv[0];
    int serving = argc == 6 && strcmp(argv[4], "serve") == 0;
    if (argc != 7 && !serving)
        usage("expected 6 arguments");

    int use_threads;
    if (strcmp(argv[1], "process") == 0)
        use_threads = 0;
    else if (strcmp(argv[1], "thread") == 0)
        use_threads = 1;
    else
        usage("MODEL must be 'process' or 'thread'");

    int cpu_a = (int)parse_long(argv[2], 0, CPU_SETSIZE - 1, "CPU_A");
    int cpu_b = (int)parse_long(argv[3], 0, CPU_SETSIZE - 1, "CPU_B");
    long iters = serving ? 1 : parse_long(argv[4], 1, MAX_ITERATIONS, "ITERATIONS");
    long repeat = serving ? 1 : parse_long(argv[5], 1, MAX_REPEAT, "REPEAT");
    long ws_kb = parse_long(argv[serving ? 5 : 6], 0, MAX_WORKING_SET_KB, "WORKING_SET_KB");

    double *net_us = malloc((size_t)repeat * sizeof *net_us);
    double *gross_us = malloc((size_t)repeat * sizeof *gross_us);
    if (net_us == NULL || gross_us == NULL)
        die("malloc");

    /* Pin A first; B inherits this mask and then re-pins itself. */
    if (pin_self(cpu_a) != 0) {
        fprintf(stderr, "%s: sched_setaffinity(CPU_A=%d): %s\n", g_prog, cpu_a,
                strerror(errno));
        return 1;
    }

    int p1[2], p2[2]; /* p1: A -> B, p2: B -> A */
    if (pipe(p1) != 0 || pipe(p2) != 0)
        die("pipe");

    static struct task a, b;
    a.cpu = cpu_a;
    a.wr_fd = p1[1];
    a.rd_fd = p2[0];
    b.cpu = cpu_b;
    b.rd_fd = p1[0];
    b.wr_fd = p2[1];

    pid_t child = -1;
    pthread_t thread;
    struct thread_arg targ = {.b = &b, .ws_kb = ws_kb, .status = 0};

    if (use_threads) {
        int rc = pthread_create(&thread, NULL, thread_main, &targ);
        if (rc != 0) {
            errno = rc;
            die("pthread_create");
        }
    } else {
        pid_t parent = getpid();
        fflush(NULL); /* nothing buffered may be written twice */
        child = fork();
        if (child < 0)
            die("fork");
        if (child == 0) {
            /* Die with the parent; close the race where it already died. */
            if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != parent)
                _exit(1);
            close(p1[1]);
            close(p2[0]);
            _exit(task_b_run(&b, ws_kb));
        }
        close(p1[0]);
        close(p2[1]);
    }

    /* Wait until B is pinned (or has failed to pin). */
    int hello = read_byte(a.rd_fd);
    if (hello != TOKEN_READY) {
        if (use_threads)
            pthread_join(thread, NULL);
        else
            waitpid(child, NULL, 0);
        if (hello != TOKEN_FAIL)
            fprintf(stderr, "%s: partner task failed to start\n", g_prog);
        return 1;
    }

    /* A's private buffer and private pipe for the baseline. */
    alloc_buffer(&a, ws_kb, 0);
    int self_pipe[2];
    if (pipe(self_pipe) != 0)
        die("pipe");

    int served = serving ? serve(&a, self_pipe, use_threads ? targ.tid : (long)child) : 0;

    /* Warm-up: one sample of each kind, discarded. */
    if (!serving) {
        sample_baseline(&a, self_pipe, iters);
        sample_round_trip(&a, iters);
    }

    for (long r = 0; r < repeat && !serving; r++) {
        double base = sample_baseline(&a, self_pipe, iters);
        double rt = sample_round_trip(&a, iters);
        printf("rt_ns=%.3f base_ns=%.3f\n", rt, base);
        gross_us[r] = rt / 2.0 / 1000.0;
        net_us[r] = (rt - 2.0 * base) / 2.0 / 1000.0;
    }

    /* Stop B and reap it. */
    if (write_byte(a.wr_fd, TOKEN_QUIT) != 0)
        die("write (quit)");
    int b_status = 0;
    if (use_threads) {
        pthread_join(thread, NULL);
        b_status = targ.status;
    } else {
        int ws;
        if (waitpid(child, &ws, 0) < 0)
            die("waitpid");
        b_status = !(WIFEXITED(ws) && WEXITSTATUS(ws) == 0);
    }
    if (b_status != 0) {
        fprintf(stderr, "%s: partner task exited abnormally\n", g_prog);
        return 1;
    }

    if (serving) {
        free(a.buf);
        return served;
    }
    printf("net_us_median=%.6f gross_us_median=%.6f\n", median(net_us, repeat),
           median(gross_us, repeat));

    free(a.buf);
    free(net_us);
    free(gross_us);
    close(self_pipe[0]);
    close(self_pipe[1]);
    return fflush(stdout) == 0 ? 0 : 1;
}
