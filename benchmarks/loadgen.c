/*
 * WebSocket load generator of the wsecho benchmark.
 *
 * One process, one thread, one epoll loop, so that it uses one core and can
 * be pinned next to the server under test. run.py and sweep.py compile it
 * with the system C compiler and start it; see benchmarks/README.md.
 *
 * Modes:
 *   loop  Open --connections connections, then on each one send a message of
 *         --size bytes, wait for its echo, check it byte by byte, and send the
 *         next one. Nothing is counted during --warmup seconds; the following
 *         --duration seconds are the measuring window. Prints one JSON object:
 *         messages, payload bytes and latency percentiles inside the window,
 *         and the CPU time of this process, of the --server-pid processes and
 *         of everything else on the machine over the same window.
 *   idle  Open --connections connections and send nothing. Prints one JSON
 *         line once all are open, keeps them open (replying to pings) until a
 *         line or end of file arrives on standard input, or --hold seconds
 *         pass, then closes them and prints a second JSON line.
 *
 * Every error ends the process with status 1 and one line on standard error.
 *
 * NOTE: the opening handshake checks the 101 status line but not the
 * Sec-WebSocket-Accept value, because that needs SHA-1; every server driven
 * here is started by the harness on the loopback interface.
 */

#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_SERVER_PIDS 64
#define MAX_CONNECTING 32     /* connection attempts and handshakes in flight */
#define MAX_EVENTS 512
#define MAX_LATENCY_SAMPLES 50000000 /* 400 MB at most */
#define CLOSE_WAIT_SECONDS 5.0
#define INITIAL_READ_BUFFER 4096

enum conn_state {
    CONN_IDLE,          /* not started yet */
    CONN_CONNECTING,    /* TCP connect in progress */
    CONN_HANDSHAKE,     /* upgrade request sent, waiting for the response */
    CONN_OPEN,
    CONN_CLOSING,       /* close frame sent, waiting for the server to close */
    CONN_CLOSED,
};

enum phase {
    PHASE_CONNECTING,
    PHASE_WARMUP,
    PHASE_MEASURE,
    PHASE_HOLD,
    PHASE_CLOSING,
};

struct conn {
    int fd;
    enum conn_state state;
    unsigned char *rbuf;
    size_t rcap, rlen;
    unsigned char *wbuf;
    size_t wcap, wlen, woff;
    bool writable_wanted;
    bool awaiting_echo;
    uint64_t sent_at_ns;
    int message_opcode;     /* opcode of the message being received, 0 if none */
    size_t message_length;  /* payload bytes of that message received so far */
    uint64_t rng;
};

struct options {
    const char *mode;
    const char *host;
    int port;
    const char *path;
    int connections;
    size_t size;
    bool binary;
    double warmup;
    double duration;
    double hold;
    double connect_timeout;
    int server_pids[MAX_SERVER_PIDS];
    int server_pid_count;
};

struct cpu_sample {
    uint64_t wall_ns;
    uint64_t self_ticks;
    uint64_t server_ticks;
    uint64_t machine_busy_ticks;
};

static struct options opt = {
    .mode = "loop",
    .host = "127.0.0.1",
    .port = 0,
    .path = "/",
    .connections = 1,
    .size = 32,
    .binary = false,
    .warmup = 2.0,
    .duration = 5.0,
    .hold = 120.0,
    .connect_timeout = 120.0,
};

static int epoll_fd;
static struct conn *conns;
static unsigned char *expected_payload;
static enum phase phase = PHASE_CONNECTING;
static int next_to_start;   /* index of the next connection to start */
static int connecting;      /* connections in CONN_CONNECTING or CONN_HANDSHAKE */
static int open_count;
static int closed_count;
static uint64_t measured_messages;
static uint64_t *latencies;
static size_t latency_count, latency_cap;
static bool latency_overflow;

static void fail(const char *format, ...)
{
    va_list args;
    fputs("loadgen: ", stderr);
    va_start(args, format);
    vfprintf(stderr, format, args);
    va_end(args);
    fputc('\n', stderr);
    exit(1);
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void *checked_realloc(void *pointer, size_t size)
{
    void *result = realloc(pointer, size);
    if (result == NULL)
        fail("out of memory allocating %zu bytes", size);
    return result;
}

static uint64_t xorshift(uint64_t *state)
{
    uint64_t x = *state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    *state = x;
    return x;
}

/* CPU accounting from /proc, in clock ticks. */

static uint64_t process_ticks(int pid)
{
    char path[64], text[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    FILE *file = fopen(path, "r");
    if (file == NULL)
        fail("cannot read %s: %s; did the server exit?", path, strerror(errno));
    size_t length = fread(text, 1, sizeof text - 1, file);
    fclose(file);
    text[length] = '\0';
    /* The command name may contain spaces, so fields are counted from the
     * last ')'. utime and stime are fields 14 and 15 of proc(5). */
    char *cursor = strrchr(text, ')');
    if (cursor == NULL)
        fail("unexpected format of %s", path);
    unsigned long long utime = 0, stime = 0;
    int matched = sscanf(cursor + 2,
                         "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu",
                         &utime, &stime);
    if (matched != 2)
        fail("unexpected format of %s", path);
    return utime + stime;
}

static uint64_t machine_busy_ticks(void)
{
    FILE *file = fopen("/proc/stat", "r");
    if (file == NULL)
        fail("cannot read /proc/stat: %s", strerror(errno));
    unsigned long long user, nice, system, idle, iowait, irq, softirq, steal;
    int matched = fscanf(file, "cpu %llu %llu %llu %llu %llu %llu %llu %llu",
                         &user, &nice, &system, &idle, &iowait, &irq, &softirq, &steal);
    fclose(file);
    if (matched != 8)
        fail("unexpected format of /proc/stat");
    return user + nice + system + irq + softirq + steal;
}

static struct cpu_sample sample_cpu(void)
{
    struct cpu_sample sample = {0};
    sample.wall_ns = now_ns();
    sample.self_ticks = process_ticks(getpid());
    for (int i = 0; i < opt.server_pid_count; i++)
        sample.server_ticks += process_ticks(opt.server_pids[i]);
    sample.machine_busy_ticks = machine_busy_ticks();
    return sample;
}

/* Output buffer and writing. */

static void set_writable_wanted(struct conn *c, bool wanted)
{
    if (c->writable_wanted == wanted)
        return;
    struct epoll_event event = {.events = EPOLLIN | (wanted ? EPOLLOUT : 0u),
                                .data.ptr = c};
    if (epoll_ctl(epoll_fd, EPOLL_CTL_MOD, c->fd, &event) < 0)
        fail("epoll_ctl failed: %s", strerror(errno));
    c->writable_wanted = wanted;
}

static unsigned char *reserve_output(struct conn *c, size_t size)
{
    if (c->woff == c->wlen)
        c->woff = c->wlen = 0;
    if (c->wlen + size > c->wcap) {
        c->wcap = c->wlen + size;
        c->wbuf = checked_realloc(c->wbuf, c->wcap);
    }
    unsigned char *start = c->wbuf + c->wlen;
    c->wlen += size;
    return start;
}

static void flush_output(struct conn *c)
{
    while (c->woff < c->wlen) {
        ssize_t n = send(c->fd, c->wbuf + c->woff, c->wlen - c->woff, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                set_writable_wanted(c, true);
                return;
            }
            if (errno == EINTR)
                continue;
            if (phase == PHASE_CLOSING)
                return;
            fail("sending to %s:%d failed: %s", opt.host, opt.port, strerror(errno));
        }
        c->woff += (size_t)n;
    }
    c->woff = c->wlen = 0;
    if (c->state != CONN_CONNECTING)
        set_writable_wanted(c, false);
}

/* Append one masked client frame; RFC 6455 requires a fresh mask per frame. */
static void append_frame(struct conn *c, int opcode, const unsigned char *payload,
                         size_t length)
{
    size_t header = 2 + 4;
    if (length >= 65536)
        header += 8;
    else if (length >= 126)
        header += 2;
    unsigned char *out = reserve_output(c, header + length);

    out[0] = (unsigned char)(0x80 | opcode);
    size_t at;
    if (length >= 65536) {
        out[1] = 0x80 | 127;
        for (int i = 0; i < 8; i++)
            out[2 + i] = (unsigned char)(length >> (56 - 8 * i));
        at = 10;
    } else if (length >= 126) {
        out[1] = 0x80 | 126;
        out[2] = (unsigned char)(length >> 8);
        out[3] = (unsigned char)length;
        at = 4;
    } else {
        out[1] = (unsigned char)(0x80 | length);
        at = 2;
    }

    uint32_t mask32 = (uint32_t)xorshift(&c->rng);
    unsigned char mask[4];
    memcpy(mask, &mask32, 4);
    memcpy(out + at, mask, 4);
    at += 4;

    uint64_t mask64;
    memcpy(&mask64, mask, 4);
    memcpy((unsigned char *)&mask64 + 4, mask, 4);
    unsigned char *masked = out + at;
    size_t i = 0;
    for (; i + 8 <= length; i += 8) {
        uint64_t word;
        memcpy(&word, payload + i, 8);
        word ^= mask64;
        memcpy(masked + i, &word, 8);
    }
    for (; i < length; i++)
        masked[i] = payload[i] ^ mask[i & 3];
}

static void send_message(struct conn *c)
{
    append_frame(c, opt.binary ? 2 : 1, expected_payload, opt.size);
    c->awaiting_echo = true;
    c->sent_at_ns = now_ns();
    flush_output(c);
}

static void send_close(struct conn *c)
{
    /* Status 1000, normal closure. */
    const unsigned char code[2] = {0x03, 0xe8};
    append_frame(c, 8, code, sizeof code);
    c->state = CONN_CLOSING;
    flush_output(c);
}

/* Connection life. */

static void close_conn(struct conn *c)
{
    if (c->state == CONN_CLOSED)
        return;
    if (c->state == CONN_IDLE) {
        c->state = CONN_CLOSED;
        closed_count++;
        return;
    }
    if (c->state == CONN_CONNECTING || c->state == CONN_HANDSHAKE)
        connecting--;
    if (c->state == CONN_OPEN || c->state == CONN_CLOSING)
        open_count--;
    epoll_ctl(epoll_fd, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    c->state = CONN_CLOSED;
    closed_count++;
}

static void start_connection(struct conn *c)
{
    struct sockaddr_storage address;
    socklen_t address_length;
    memset(&address, 0, sizeof address);
    int family = strchr(opt.host, ':') ? AF_INET6 : AF_INET;
    if (family == AF_INET6) {
        struct sockaddr_in6 *ipv6 = (struct sockaddr_in6 *)&address;
        ipv6->sin6_family = AF_INET6;
        ipv6->sin6_port = htons((uint16_t)opt.port);
        if (inet_pton(AF_INET6, opt.host, &ipv6->sin6_addr) != 1)
            fail("invalid IPv6 address %s", opt.host);
        address_length = sizeof *ipv6;
    } else {
        struct sockaddr_in *ipv4 = (struct sockaddr_in *)&address;
        ipv4->sin_family = AF_INET;
        ipv4->sin_port = htons((uint16_t)opt.port);
        if (inet_pton(AF_INET, opt.host, &ipv4->sin_addr) != 1)
            fail("invalid IPv4 address %s; use a numeric address", opt.host);
        address_length = sizeof *ipv4;
    }

    c->fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0)
        fail("cannot create a socket: %s", strerror(errno));
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(c->fd, (struct sockaddr *)&address, address_length) < 0 &&
        errno != EINPROGRESS)
        fail("cannot connect to %s:%d: %s", opt.host, opt.port, strerror(errno));

    c->state = CONN_CONNECTING;
    c->writable_wanted = true;
    struct epoll_event event = {.events = EPOLLIN | EPOLLOUT, .data.ptr = c};
    if (epoll_ctl(epoll_fd, EPOLL_CTL_ADD, c->fd, &event) < 0)
        fail("epoll_ctl failed: %s", strerror(errno));
    connecting++;
}

static void start_more_connections(void)
{
    while (connecting < MAX_CONNECTING && next_to_start < opt.connections)
        start_connection(&conns[next_to_start++]);
}

static void base64_encode(const unsigned char *input, size_t length, char *output)
{
    static const char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t o = 0;
    for (size_t i = 0; i < length; i += 3) {
        uint32_t chunk = (uint32_t)input[i] << 16;
        if (i + 1 < length)
            chunk |= (uint32_t)input[i + 1] << 8;
        if (i + 2 < length)
            chunk |= input[i + 2];
        output[o++] = alphabet[(chunk >> 18) & 63];
        output[o++] = alphabet[(chunk >> 12) & 63];
        output[o++] = i + 1 < length ? alphabet[(chunk >> 6) & 63] : '=';
        output[o++] = i + 2 < length ? alphabet[chunk & 63] : '=';
    }
    output[o] = '\0';
}

static void send_upgrade_request(struct conn *c)
{
    unsigned char key[16];
    for (int i = 0; i < 16; i += 8) {
        uint64_t random = xorshift(&c->rng);
        memcpy(key + i, &random, 8);
    }
    char encoded_key[32];
    base64_encode(key, sizeof key, encoded_key);

    bool ipv6 = strchr(opt.host, ':') != NULL;
    char request[1024];
    int length = snprintf(request, sizeof request,
                          "GET %s HTTP/1.1\r\n"
                          "Host: %s%s%s:%d\r\n"
                          "Upgrade: websocket\r\n"
                          "Connection: Upgrade\r\n"
                          "Sec-WebSocket-Key: %s\r\n"
                          "Sec-WebSocket-Version: 13\r\n"
                          "\r\n",
                          opt.path, ipv6 ? "[" : "", opt.host, ipv6 ? "]" : "",
                          opt.port, encoded_key);
    if (length < 0 || (size_t)length >= sizeof request)
        fail("the path %s is too long", opt.path);
    memcpy(reserve_output(c, (size_t)length), request, (size_t)length);
    c->state = CONN_HANDSHAKE;
    flush_output(c);
}

static void on_open(struct conn *c)
{
    c->state = CONN_OPEN;
    connecting--;
    open_count++;
    if (phase == PHASE_WARMUP || phase == PHASE_MEASURE)
        send_message(c);
    else if (phase == PHASE_CLOSING)
        send_close(c);
}

/* Handle the HTTP response to the upgrade request; returns the bytes used. */
static size_t parse_upgrade_response(struct conn *c)
{
    unsigned char *end = memmem(c->rbuf, c->rlen, "\r\n\r\n", 4);
    if (end == NULL) {
        if (c->rlen > 16384)
            fail("the upgrade response from %s:%d%s is longer than 16 KiB",
                 opt.host, opt.port, opt.path);
        return 0;
    }
    static const char expected[] = "HTTP/1.1 101";
    if (c->rlen < sizeof expected - 1 || memcmp(c->rbuf, expected, sizeof expected - 1) != 0) {
        unsigned char *line_end = memchr(c->rbuf, '\r', c->rlen);
        int line_length = (int)(line_end - c->rbuf);
        fail("the server at %s:%d%s rejected the WebSocket upgrade: %.*s",
             opt.host, opt.port, opt.path, line_length, (const char *)c->rbuf);
    }
    on_open(c);
    return (size_t)(end + 4 - c->rbuf);
}

static void record_latency(uint64_t latency_ns)
{
    if (latency_count == latency_cap) {
        if (latency_cap == MAX_LATENCY_SAMPLES) {
            latency_overflow = true;
            return;
        }
        latency_cap = latency_cap == 0 ? 65536 : latency_cap * 2;
        if (latency_cap > MAX_LATENCY_SAMPLES)
            latency_cap = MAX_LATENCY_SAMPLES;
        latencies = checked_realloc(latencies, latency_cap * sizeof *latencies);
    }
    latencies[latency_count++] = latency_ns;
}

static void on_message_complete(struct conn *c)
{
    uint64_t now = now_ns();
    c->awaiting_echo = false;
    if (phase == PHASE_MEASURE) {
        measured_messages++;
        record_latency(now - c->sent_at_ns);
    }
    if (phase == PHASE_WARMUP || phase == PHASE_MEASURE)
        send_message(c);
}

static void on_data_frame(struct conn *c, int opcode, bool fin,
                          const unsigned char *payload, size_t length)
{
    if (!c->awaiting_echo)
        fail("the server sent a message that echoes nothing");
    if (opcode != 0) {
        if (c->message_opcode != 0)
            fail("the server started a new message inside a fragmented one");
        int expected_opcode = opt.binary ? 2 : 1;
        if (opcode != expected_opcode)
            fail("the echo came back as a %s message, expected %s",
                 opcode == 1 ? "text" : "binary", opt.binary ? "binary" : "text");
        c->message_opcode = opcode;
        c->message_length = 0;
    } else if (c->message_opcode == 0) {
        fail("the server sent a continuation frame outside a message");
    }
    if (c->message_length + length > opt.size ||
        memcmp(payload, expected_payload + c->message_length, length) != 0)
        fail("the echo differs from the message sent (%zu bytes)", opt.size);
    c->message_length += length;
    if (!fin)
        return;
    if (c->message_length != opt.size)
        fail("the echo has %zu bytes, expected %zu", c->message_length, opt.size);
    c->message_opcode = 0;
    on_message_complete(c);
}

/* Handle every complete frame in the read buffer; returns the bytes used. */
static size_t parse_frames(struct conn *c, size_t start)
{
    size_t at = start;
    while (c->rlen - at >= 2) {
        unsigned char *frame = c->rbuf + at;
        bool fin = frame[0] & 0x80;
        int opcode = frame[0] & 0x0f;
        if (frame[1] & 0x80)
            fail("the server sent a masked frame, which RFC 6455 forbids");
        size_t header = 2;
        uint64_t length = frame[1] & 0x7f;
        if (length == 126) {
            if (c->rlen - at < 4)
                break;
            length = ((uint64_t)frame[2] << 8) | frame[3];
            header = 4;
        } else if (length == 127) {
            if (c->rlen - at < 10)
                break;
            length = 0;
            for (int i = 0; i < 8; i++)
                length = (length << 8) | frame[2 + i];
            header = 10;
        }
        if (length > opt.size + 1024 && length > 65536)
            fail("the server sent a frame of %llu bytes, larger than any echo",
                 (unsigned long long)length);
        if (c->rlen - at < header + length) {
            size_t needed = header + (size_t)length;
            if (needed > c->rcap) {
                /* Move the partial frame to the start, then grow for the rest. */
                memmove(c->rbuf, frame, c->rlen - at);
                c->rlen -= at;
                c->rcap = needed;
                c->rbuf = checked_realloc(c->rbuf, c->rcap);
                return 0;
            }
            break;
        }

        const unsigned char *payload = frame + header;
        switch (opcode) {
        case 0:
        case 1:
        case 2:
            if (c->state == CONN_OPEN)
                on_data_frame(c, opcode, fin, payload, (size_t)length);
            break;
        case 8:
            if (c->state != CONN_CLOSING) {
                int code = length >= 2 ? (payload[0] << 8) | payload[1] : 1005;
                fail("the server closed a connection with status %d", code);
            }
            /* The server closes the TCP connection after its close frame. */
            break;
        case 9:
            if (length > 125)
                fail("the server sent a ping of %llu bytes", (unsigned long long)length);
            append_frame(c, 10, payload, (size_t)length);
            flush_output(c);
            break;
        case 10:
            break;
        default:
            fail("the server sent a frame with the reserved opcode %d", opcode);
        }
        at += header + (size_t)length;
    }
    return at;
}

static void on_readable(struct conn *c)
{
    for (;;) {
        if (c->rcap - c->rlen < 1024) {
            c->rcap = c->rcap * 2;
            c->rbuf = checked_realloc(c->rbuf, c->rcap);
        }
        ssize_t n = recv(c->fd, c->rbuf + c->rlen, c->rcap - c->rlen, 0);
        if (n == 0) {
            if (c->state == CONN_CLOSING || phase == PHASE_CLOSING) {
                close_conn(c);
                return;
            }
            fail("the server at %s:%d closed a connection unexpectedly", opt.host, opt.port);
        }
        if (n < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return;
            if (errno == EINTR)
                continue;
            if (phase == PHASE_CLOSING) {
                close_conn(c);
                return;
            }
            fail("reading from %s:%d failed: %s", opt.host, opt.port, strerror(errno));
        }
        bool filled = (size_t)n == c->rcap - c->rlen;
        c->rlen += (size_t)n;

        size_t used = 0;
        if (c->state == CONN_HANDSHAKE) {
            used = parse_upgrade_response(c);
            if (c->state == CONN_HANDSHAKE) {
                if (!filled)
                    return;
                continue;
            }
        }
        used = parse_frames(c, used);
        if (used > 0) {
            memmove(c->rbuf, c->rbuf + used, c->rlen - used);
            c->rlen -= used;
        }
        if (c->state == CONN_CLOSED || !filled)
            return;
    }
}

static void on_writable(struct conn *c)
{
    if (c->state == CONN_CONNECTING) {
        int error = 0;
        socklen_t length = sizeof error;
        getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &error, &length);
        if (error != 0)
            fail("cannot connect to %s:%d: %s", opt.host, opt.port, strerror(error));
        send_upgrade_request(c);
        return;
    }
    flush_output(c);
}

/* Event loop. */

static void run_until(uint64_t deadline_ns, bool (*done)(void))
{
    struct epoll_event events[MAX_EVENTS];
    for (;;) {
        if (done != NULL && done())
            return;
        uint64_t now = now_ns();
        if (now >= deadline_ns)
            return;
        int timeout_ms = (int)((deadline_ns - now + 999999) / 1000000);
        int count = epoll_wait(epoll_fd, events, MAX_EVENTS, timeout_ms);
        if (count < 0) {
            if (errno == EINTR)
                continue;
            fail("epoll_wait failed: %s", strerror(errno));
        }
        for (int i = 0; i < count; i++) {
            struct conn *c = events[i].data.ptr;
            if (c == NULL)
                return; /* standard input is readable: the harness requests the close */
            if (c->state == CONN_CLOSED)
                continue;
            if (events[i].events & (EPOLLOUT | EPOLLERR))
                on_writable(c);
            if (c->state != CONN_CLOSED && events[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR))
                on_readable(c);
        }
        if (phase == PHASE_CONNECTING)
            start_more_connections();
    }
}

static bool all_open(void)
{
    return open_count == opt.connections;
}

static bool all_closed(void)
{
    return closed_count == opt.connections;
}

static void open_all(void)
{
    uint64_t start = now_ns();
    start_more_connections();
    run_until(start + (uint64_t)(opt.connect_timeout * 1e9), all_open);
    if (!all_open())
        fail("timed out after %.0f s with %d of %d connections open to %s:%d%s",
             opt.connect_timeout, open_count, opt.connections, opt.host, opt.port,
             opt.path);
}

static void close_all(void)
{
    phase = PHASE_CLOSING;
    for (int i = 0; i < opt.connections; i++) {
        struct conn *c = &conns[i];
        if (c->state == CONN_OPEN)
            send_close(c);
        else if (c->state != CONN_CLOSING)
            close_conn(c);
    }
    run_until(now_ns() + (uint64_t)(CLOSE_WAIT_SECONDS * 1e9), all_closed);
    for (int i = 0; i < opt.connections; i++)
        close_conn(&conns[i]);
}

static int compare_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

static double percentile_us(double fraction)
{
    if (latency_count == 0)
        return 0.0;
    size_t index = (size_t)(fraction * (double)(latency_count - 1) + 0.5);
    return (double)latencies[index] / 1000.0;
}

static double ticks_percent(uint64_t ticks, uint64_t wall_ns)
{
    double seconds = (double)ticks / (double)sysconf(_SC_CLK_TCK);
    return 100.0 * seconds / ((double)wall_ns / 1e9);
}

static void run_loop_mode(void)
{
    open_all();
    phase = PHASE_WARMUP;
    uint64_t warmup_start = now_ns();
    for (int i = 0; i < opt.connections; i++)
        send_message(&conns[i]);
    run_until(warmup_start + (uint64_t)(opt.warmup * 1e9), NULL);

    phase = PHASE_MEASURE;
    struct cpu_sample before = sample_cpu();
    run_until(before.wall_ns + (uint64_t)(opt.duration * 1e9), NULL);
    struct cpu_sample after = sample_cpu();
    close_all();

    uint64_t wall = after.wall_ns - before.wall_ns;
    double seconds = (double)wall / 1e9;
    qsort(latencies, latency_count, sizeof *latencies, compare_u64);
    uint64_t self_ticks = after.self_ticks - before.self_ticks;
    uint64_t server_ticks = after.server_ticks - before.server_ticks;
    uint64_t busy_ticks = after.machine_busy_ticks - before.machine_busy_ticks;
    uint64_t ours = self_ticks + server_ticks;
    uint64_t other_ticks = busy_ticks > ours ? busy_ticks - ours : 0;

    printf("{\"mode\": \"loop\", \"connections\": %d, \"size\": %zu, "
           "\"binary\": %s, \"seconds\": %.3f, \"messages\": %llu, "
           "\"messages_per_second\": %.1f, \"megabytes_per_second\": %.3f, "
           "\"latency_us\": {\"p50\": %.1f, \"p90\": %.1f, \"p99\": %.1f, "
           "\"max\": %.1f}, \"latency_samples_dropped\": %s, "
           "\"generator_cpu_percent\": %.1f, \"server_cpu_percent\": %.1f, "
           "\"other_cpu_percent\": %.1f}\n",
           opt.connections, opt.size, opt.binary ? "true" : "false", seconds,
           (unsigned long long)measured_messages,
           (double)measured_messages / seconds,
           (double)measured_messages * (double)opt.size / seconds / 1e6,
           percentile_us(0.50), percentile_us(0.90), percentile_us(0.99),
           percentile_us(1.0), latency_overflow ? "true" : "false",
           ticks_percent(self_ticks, wall),
           opt.server_pid_count > 0 ? ticks_percent(server_ticks, wall) : 0.0,
           ticks_percent(other_ticks, wall));
    fflush(stdout);
}

static void run_idle_mode(void)
{
    uint64_t start = now_ns();
    open_all();
    double opening_seconds = (double)(now_ns() - start) / 1e9;
    printf("{\"event\": \"open\", \"connections\": %d, \"seconds\": %.3f}\n",
           open_count, opening_seconds);
    fflush(stdout);

    phase = PHASE_HOLD;
    struct epoll_event event = {.events = EPOLLIN, .data.ptr = NULL};
    if (epoll_ctl(epoll_fd, EPOLL_CTL_ADD, STDIN_FILENO, &event) < 0)
        fail("cannot watch standard input: %s", strerror(errno));
    struct cpu_sample before = sample_cpu();
    run_until(now_ns() + (uint64_t)(opt.hold * 1e9), NULL);
    struct cpu_sample after = sample_cpu();
    int still_open = open_count;
    close_all();

    uint64_t wall = after.wall_ns - before.wall_ns;
    uint64_t self_ticks = after.self_ticks - before.self_ticks;
    uint64_t server_ticks = after.server_ticks - before.server_ticks;
    uint64_t busy_ticks = after.machine_busy_ticks - before.machine_busy_ticks;
    uint64_t ours = self_ticks + server_ticks;
    uint64_t other_ticks = busy_ticks > ours ? busy_ticks - ours : 0;
    printf("{\"event\": \"closed\", \"connections\": %d, \"held_seconds\": %.3f, "
           "\"generator_cpu_percent\": %.1f, \"server_cpu_percent\": %.1f, "
           "\"other_cpu_percent\": %.1f}\n",
           still_open, (double)wall / 1e9, ticks_percent(self_ticks, wall),
           opt.server_pid_count > 0 ? ticks_percent(server_ticks, wall) : 0.0,
           ticks_percent(other_ticks, wall));
    fflush(stdout);
}

static void usage(void)
{
    fputs("usage: loadgen --port PORT [--mode loop|idle] [--host ADDRESS] [--path PATH]\n"
          "               [--connections N] [--size BYTES] [--binary]\n"
          "               [--warmup SECONDS] [--duration SECONDS] [--hold SECONDS]\n"
          "               [--connect-timeout SECONDS] [--server-pid PID ...]\n",
          stderr);
    exit(2);
}

static double parse_seconds(const char *text, const char *name)
{
    char *end;
    double value = strtod(text, &end);
    if (*end != '\0' || value < 0 || value > 86400)
        fail("invalid %s %s: expected seconds from 0 to 86400", name, text);
    return value;
}

static long parse_integer(const char *text, const char *name, long low, long high)
{
    char *end;
    long value = strtol(text, &end, 10);
    if (*end != '\0' || value < low || value > high)
        fail("invalid %s %s: expected an integer from %ld to %ld", name, text, low, high);
    return value;
}

static void parse_options(int argc, char **argv)
{
    static const struct option long_options[] = {
        {"mode", required_argument, NULL, 'm'},
        {"host", required_argument, NULL, 'H'},
        {"port", required_argument, NULL, 'p'},
        {"path", required_argument, NULL, 'P'},
        {"connections", required_argument, NULL, 'c'},
        {"size", required_argument, NULL, 's'},
        {"binary", no_argument, NULL, 'b'},
        {"warmup", required_argument, NULL, 'w'},
        {"duration", required_argument, NULL, 'd'},
        {"hold", required_argument, NULL, 'h'},
        {"connect-timeout", required_argument, NULL, 't'},
        {"server-pid", required_argument, NULL, 'S'},
        {NULL, 0, NULL, 0},
    };
    int code;
    while ((code = getopt_long(argc, argv, "", long_options, NULL)) != -1) {
        switch (code) {
        case 'm':
            opt.mode = optarg;
            break;
        case 'H':
            opt.host = optarg;
            break;
        case 'p':
            opt.port = (int)parse_integer(optarg, "--port", 1, 65535);
            break;
        case 'P':
            opt.path = optarg;
            break;
        case 'c':
            opt.connections = (int)parse_integer(optarg, "--connections", 1, 1000000);
            break;
        case 's':
            opt.size = (size_t)parse_integer(optarg, "--size", 1, 64L * 1024 * 1024);
            break;
        case 'b':
            opt.binary = true;
            break;
        case 'w':
            opt.warmup = parse_seconds(optarg, "--warmup");
            break;
        case 'd':
            opt.duration = parse_seconds(optarg, "--duration");
            break;
        case 'h':
            opt.hold = parse_seconds(optarg, "--hold");
            break;
        case 't':
            opt.connect_timeout = parse_seconds(optarg, "--connect-timeout");
            break;
        case 'S':
            if (opt.server_pid_count == MAX_SERVER_PIDS)
                fail("at most %d --server-pid options are supported", MAX_SERVER_PIDS);
            opt.server_pids[opt.server_pid_count++] =
                (int)parse_integer(optarg, "--server-pid", 1, 1L << 30);
            break;
        default:
            usage();
        }
    }
    if (optind != argc || opt.port == 0)
        usage();
    if (strcmp(opt.mode, "loop") != 0 && strcmp(opt.mode, "idle") != 0)
        fail("invalid --mode %s: expected loop or idle", opt.mode);
    if (opt.path[0] != '/')
        fail("invalid --path %s: it must start with /", opt.path);
}

static void raise_open_file_limit(void)
{
    struct rlimit limit;
    if (getrlimit(RLIMIT_NOFILE, &limit) < 0)
        fail("getrlimit failed: %s", strerror(errno));
    limit.rlim_cur = limit.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &limit) < 0)
        fail("setrlimit failed: %s", strerror(errno));
    rlim_t needed = (rlim_t)opt.connections + 16;
    if (limit.rlim_cur != RLIM_INFINITY && limit.rlim_cur < needed)
        fail("%d connections need %llu file descriptors, but the hard limit is %llu; "
             "raise it with ulimit -Hn",
             opt.connections, (unsigned long long)needed,
             (unsigned long long)limit.rlim_cur);
}

int main(int argc, char **argv)
{
    parse_options(argc, argv);
    raise_open_file_limit();

    /* Text payloads are printable ASCII, so valid UTF-8; binary payloads
     * cover every byte value, so a server that decodes them as text fails. */
    expected_payload = checked_realloc(NULL, opt.size);
    static const char letters[] = "abcdefghijklmnopqrstuvwxyz0123456789";
    for (size_t i = 0; i < opt.size; i++)
        expected_payload[i] = opt.binary ? (unsigned char)(i * 167 + 13)
                                         : (unsigned char)letters[i % (sizeof letters - 1)];

    epoll_fd = epoll_create1(EPOLL_CLOEXEC);
    if (epoll_fd < 0)
        fail("epoll_create1 failed: %s", strerror(errno));

    conns = calloc((size_t)opt.connections, sizeof *conns);
    if (conns == NULL)
        fail("out of memory for %d connections", opt.connections);
    uint64_t seed = now_ns() ^ ((uint64_t)getpid() << 32);
    size_t read_buffer = INITIAL_READ_BUFFER;
    if (strcmp(opt.mode, "loop") == 0 && opt.size + 64 > read_buffer)
        read_buffer = opt.size + 64;
    for (int i = 0; i < opt.connections; i++) {
        struct conn *c = &conns[i];
        c->fd = -1;
        c->state = CONN_IDLE;
        c->rng = seed + 0x9e3779b97f4a7c15ull * (uint64_t)(i + 1);
        c->rcap = read_buffer;
        c->rbuf = checked_realloc(NULL, c->rcap);
    }

    if (strcmp(opt.mode, "loop") == 0)
        run_loop_mode();
    else
        run_idle_mode();
    return 0;
}
