/*
 * faas-forwarder: the first process of a container-image function (docs/image-functions.md).
 *
 * An image that follows Lambda's contract runs its own runtime client, which speaks HTTP to
 * AWS_LAMBDA_RUNTIME_API=127.0.0.1:9001. faas serves the Runtime API on a unix socket mounted
 * into the container, and the image may have no shell, socat or anything else to bridge the
 * two: so this static binary, bind-mounted read-only, does it. It
 *   1. sends its stdout and stderr (and so the function's) to the environment's log FIFO;
 *   2. listens on 127.0.0.1:9001 (and 127.0.0.1:9002 for the Lambda API relay when
 *      FAAS_AWS_SOCKET is set) inside the container's own network namespace, and relays each
 *      connection to the matching unix socket from a child process;
 *   3. execs the image's entrypoint and command (argv after "--"), which stays PID 1 as on
 *      Lambda; if that fails it reports Runtime.InvalidEntrypoint as an init error.
 * No allocation, no libraries beyond libc: built with -static so it runs in any image.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define RUNTIME_PORT 9001
#define AWS_PORT 9002

static int listen_on(int port) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons((unsigned short)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, (struct sockaddr *)&a, sizeof a) < 0 || listen(fd, 64) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static int connect_unix(const char *path) {
    struct sockaddr_un a;
    if (strlen(path) >= sizeof a.sun_path) return -1;
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    memset(&a, 0, sizeof a);
    a.sun_family = AF_UNIX;
    strcpy(a.sun_path, path);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static int write_all(int fd, const char *p, size_t n) {
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Copy both ways until both sides have closed; a half-close is passed on. */
static void relay(int a, int b) {
    char buf[65536];
    int open_a = 1, open_b = 1;
    while (open_a || open_b) {
        struct pollfd p[2] = {{open_a ? a : -1, POLLIN, 0}, {open_b ? b : -1, POLLIN, 0}};
        if (poll(p, 2, -1) < 0) {
            if (errno == EINTR) continue;
            return;
        }
        for (int i = 0; i < 2; i++) {
            int from = i == 0 ? a : b, to = i == 0 ? b : a;
            if (!(p[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
            ssize_t r = read(from, buf, sizeof buf);
            if (r <= 0) {
                if (r < 0 && errno == EINTR) continue;
                if (r < 0) return;
                shutdown(to, SHUT_WR);
                if (i == 0) open_a = 0; else open_b = 0;
            } else if (write_all(to, buf, (size_t)r) < 0) {
                return;
            }
        }
    }
}

static void serve(int runtime_fd, const char *runtime_sock, int aws_fd, const char *aws_sock) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = SIG_IGN;
    sa.sa_flags = SA_NOCLDWAIT; /* connection children are reaped by the kernel */
    sigaction(SIGCHLD, &sa, NULL);
    for (;;) {
        struct pollfd p[2] = {{runtime_fd, POLLIN, 0}, {aws_fd, POLLIN, 0}};
        if (poll(p, aws_fd >= 0 ? 2 : 1, -1) < 0) {
            if (errno == EINTR) continue;
            _exit(1);
        }
        for (int i = 0; i < 2; i++) {
            if (p[i].fd < 0 || !(p[i].revents & POLLIN)) continue;
            int c = accept4(p[i].fd, NULL, NULL, SOCK_CLOEXEC);
            if (c < 0) continue;
            pid_t pid = fork();
            if (pid == 0) {
                int u = connect_unix(i == 0 ? runtime_sock : aws_sock);
                if (u >= 0) relay(c, u);
                _exit(0);
            }
            close(c);
        }
    }
}

/* Lambda's answer when the image's entrypoint cannot be started: an init error. */
static void init_error(const char *sock, const char *what, int err) {
    char body[1024], req[1536];
    char detail[512];
    snprintf(detail, sizeof detail, "%s: %s", what, strerror(err));
    for (char *q = detail; *q; q++)
        if (*q == '"' || *q == '\\' || (unsigned char)*q < 0x20) *q = '\'';
    int n = snprintf(body, sizeof body, "{\"errorType\": \"Runtime.InvalidEntrypoint\", \"errorMessage\": \"%s\"}", detail);
    int m = snprintf(req, sizeof req,
                     "POST /2018-06-01/runtime/init/error HTTP/1.1\r\nHost: localhost\r\n"
                     "Lambda-Runtime-Function-Error-Type: Runtime.InvalidEntrypoint\r\n"
                     "Content-Type: application/json\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s",
                     n, body);
    fprintf(stderr, "faas: cannot start the image's entrypoint: %s\n", detail);
    int fd = connect_unix(sock);
    if (fd < 0) return;
    if (write_all(fd, req, (size_t)m) == 0) {
        char sink[512];
        while (read(fd, sink, sizeof sink) > 0) {
        }
    }
    close(fd);
}

int main(int argc, char **argv) {
    const char *runtime_sock = getenv("FAAS_RUNTIME_SOCKET");
    const char *log_fifo = getenv("FAAS_LOG_FIFO");
    const char *aws_env = getenv("FAAS_AWS_SOCKET");
    char aws_sock[108] = "";
    if (!runtime_sock) runtime_sock = "/run/faas/runtime.sock";
    if (!log_fifo) log_fifo = "/run/faas/out";
    if (aws_env && strlen(aws_env) < sizeof aws_sock) strcpy(aws_sock, aws_env);

    int out = open(log_fifo, O_WRONLY | O_CLOEXEC);
    if (out >= 0) {
        dup2(out, 1);
        dup2(out, 2);
        close(out);
    }
    int first = 1;
    if (argc > 1 && strcmp(argv[1], "--") == 0) first = 2;
    if (first >= argc) {
        init_error(runtime_sock, "the image has no entrypoint or command", EINVAL);
        return 1;
    }
    int runtime_fd = listen_on(RUNTIME_PORT);
    if (runtime_fd < 0) {
        fprintf(stderr, "faas: cannot listen on 127.0.0.1:%d: %s\n", RUNTIME_PORT, strerror(errno));
        return 1;
    }
    int aws_fd = aws_sock[0] ? listen_on(AWS_PORT) : -1;
    char runtime_copy[108];
    snprintf(runtime_copy, sizeof runtime_copy, "%s", runtime_sock);
    unsetenv("FAAS_RUNTIME_SOCKET");
    unsetenv("FAAS_AWS_SOCKET");
    unsetenv("FAAS_LOG_FIFO");

    pid_t pid = fork();
    if (pid < 0) {
        fprintf(stderr, "faas: fork: %s\n", strerror(errno));
        return 1;
    }
    if (pid == 0) {
        serve(runtime_fd, runtime_copy, aws_fd, aws_sock);
        _exit(0);
    }
    close(runtime_fd);
    if (aws_fd >= 0) close(aws_fd);
    execvp(argv[first], argv + first);
    int err = errno;
    init_error(runtime_copy, argv[first], err);
    return 127;
}
