/*
 * fsync.c - the `fsync` mode: this disk's own commit latency, the floor
 * under the server's update latency.
 *
 * The server's commit ends in one write of its WAL frames and one
 * fdatasync of the WAL file (SQLite, synchronous=FULL). The WAL is reused
 * from its start after each checkpoint, so the blocks written are already
 * allocated and the sync flushes data only, no block allocation. This mode
 * does the same, one at a time, back to back, in a file of its own made in
 * --dir (give it the server's data directory: the same filesystem and
 * device): the file is first written full of zeros and synced, then
 * --size bytes are written at the next offset (wrapping round at the end)
 * and fdatasync'ed, again and again for --duration seconds. Recorded: the
 * fdatasync alone and the write + fdatasync together.
 *
 * A third distribution is the floor that group commit itself puts under
 * the update latency at --rate commands/s with a server that costs nothing
 * (floor.h), the probe's syncs standing for the server's commits.
 */
#include "bench.h"
#include "clock.h"
#include "floor.h"
#include "histogram.h"
#include "proc.h"
#include "report.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/sysmacros.h>
#include <unistd.h>

/* The filesystem a statfs(2) magic number names; "other" for the rest. */
static const char *fs_name(long magic)
{
    switch ((unsigned long)magic) {
    case 0xEF53UL:
        return "ext4";
    case 0x58465342UL:
        return "xfs";
    case 0x9123683EUL:
        return "btrfs";
    case 0x01021994UL:
        return "tmpfs";
    case 0x794C7630UL:
        return "overlayfs";
    case 0x2FC12FC1UL:
        return "zfs";
    default:
        return "other";
    }
}

/* Writes the whole file once (zeros) and syncs it, so that later writes
 * land on allocated blocks, as the server's reused WAL does. */
static int preallocate(int fd, const char *buf, size_t size, off_t file_size)
{
    for (off_t off = 0; off < file_size; off += (off_t)size) {
        size_t n = (size_t)(file_size - off) < size ? (size_t)(file_size - off) : size;
        if (pwrite(fd, buf, n, off) != (ssize_t)n)
            return -1;
    }
    return fsync(fd);
}

struct probe {
    struct cw_hist sync, write_sync, floor;
    uint64_t n;
    int64_t start, t0, t1; /* the run; the measured window */
    double rate;           /* of the floor model's arrivals */
};

/* One write + fdatasync after another until t_end; the first warmup_ns
 * are left out of the histograms. */
static int probe_run(int fd, char *buf, size_t size, off_t file_size, int64_t t_end,
                     int64_t warmup_ns, struct probe *p)
{
    off_t off = 0;
    p->start = now_ns();
    p->t0 = p->start + warmup_ns;
    struct cw_floor model;
    cw_floor_init(&model, &p->floor, p->t0, p->rate);
    for (uint64_t i = 0;; i++) {
        if (off + (off_t)size > file_size)
            off = 0;
        memcpy(buf, &i, sizeof(i)); /* a different page content each time */
        int64_t a = now_ns();
        if (pwrite(fd, buf, size, off) != (ssize_t)size)
            return -1;
        int64_t b = now_ns();
        if (fdatasync(fd))
            return -1;
        int64_t c = now_ns();
        off += (off_t)size;
        if (a >= p->t0) {
            cw_hist_record(&p->sync, c - b);
            cw_hist_record(&p->write_sync, c - a);
            p->n++;
        }
        cw_floor_commit_end(&model, c);
        if (c >= t_end) {
            p->t1 = c;
            return 0;
        }
    }
}

static void probe_report(const struct bench_opts *o, const struct probe *p, const struct stat *st,
                         const struct statfs *sf, int64_t self_ns, int64_t busy_ns)
{
    print_dist(o, "fdatasync latency", &p->sync);
    print_dist(o, "write + fdatasync latency", &p->write_sync);
    print_dist(o, "group commit floor (wait for the sync in flight, then one's own)", &p->floor);
    bench_write_hgrm(o, "fdatasync", &p->sync);
    bench_write_hgrm(o, "write-fdatasync", &p->write_sync);
    bench_write_hgrm(o, "floor", &p->floor);
    double wall = (double)(p->t1 - p->t0);
    struct bbuf b = {0};
    jb_printf(&b,
              "{\"mode\":\"fsync\",\"fs\":\"%s\",\"device\":\"%u:%u\",\"size\":%zu,"
              "\"file_size\":%lld,\"duration_s\":%.1f,\"warmup_s\":%.1f,\"syncs\":%llu,"
              "\"syncs_per_s\":%.1f,",
              fs_name((long)sf->f_type), major(st->st_dev), minor(st->st_dev), o->fsync_size,
              (long long)o->fsync_file_size, o->duration, o->warmup, (unsigned long long)p->n,
              wall > 0 ? (double)p->n * 1e9 / wall : 0);
    jb_hist(&b, "fdatasync_us", &p->sync);
    jb_printf(&b, ",");
    jb_hist(&b, "write_fdatasync_us", &p->write_sync);
    jb_printf(&b, ",\"floor_rate\":%.0f,", o->rate);
    jb_hist(&b, "floor_us", &p->floor);
    double run = (double)(p->t1 - p->start); /* the CPU figures cover the warm-up too */
    jb_printf(&b, ",\"bench_cpu_pct\":%.1f", run > 0 ? 100.0 * (double)self_ns / run : 0);
    if (busy_ns >= 0 && run > 0) {
        int64_t other = busy_ns - self_ns;
        jb_printf(&b, ",\"other_cpu_pct\":%.1f", 100.0 * (double)(other > 0 ? other : 0) / run);
    }
    jb_printf(&b, "}");
    bench_emit_json(o, b.p);
    bbuf_free(&b);
}

int bench_fsync_main(const struct bench_opts *o)
{
    if (!o->fsync_dir) {
        fprintf(stderr, "calderwood-bench: fsync needs --dir DIR (the server's data directory)\n");
        return 2;
    }
    char path[4096];
    snprintf(path, sizeof(path), "%s/fsync-probe-XXXXXX", o->fsync_dir);
    int fd = mkstemp(path);
    if (fd < 0) {
        fprintf(stderr, "calderwood-bench: cannot create a file in %s: %s\n", o->fsync_dir,
                strerror(errno));
        return 1;
    }
    unlink(path); /* gone when we are, even if killed */
    struct stat st;
    struct statfs sf;
    char *buf = calloc(1, o->fsync_size);
    struct probe *p = calloc(1, sizeof(*p));
    int rc = 1;
    if (!buf || !p || fstat(fd, &st) || fstatfs(fd, &sf)) {
        fprintf(stderr, "calderwood-bench: fsync: %s\n", strerror(errno ? errno : ENOMEM));
        goto out;
    }
    cw_hist_init(&p->sync);
    cw_hist_init(&p->write_sync);
    cw_hist_init(&p->floor);
    p->rate = o->rate;
    if (preallocate(fd, buf, o->fsync_size, o->fsync_file_size)) {
        fprintf(stderr, "calderwood-bench: fsync: preallocating %s: %s\n", o->fsync_dir,
                strerror(errno));
        goto out;
    }
    int64_t self0 = self_cpu_ns(), busy0 = machine_busy_ns();
    int64_t warmup = (int64_t)(o->warmup * 1e9);
    int64_t t_end = now_ns() + warmup + (int64_t)(o->duration * 1e9);
    if (probe_run(fd, buf, o->fsync_size, o->fsync_file_size, t_end, warmup, p)) {
        fprintf(stderr, "calderwood-bench: fsync: write or fdatasync in %s: %s\n", o->fsync_dir,
                strerror(errno));
        goto out;
    }
    int64_t self1 = self_cpu_ns(), busy1 = machine_busy_ns();
    probe_report(o, p, &st, &sf, self1 - self0, busy0 >= 0 && busy1 >= 0 ? busy1 - busy0 : -1);
    rc = 0;
out:
    close(fd);
    free(buf);
    free(p);
    return rc;
}
