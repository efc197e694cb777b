/*
 * pause-reap: time how long the PID 1 of a PID namespace takes to reap a burst
 * of orphans. Used by bench/pause.sh; not part of stasis.
 *
 *   pause-reap INIT_PID N   prints the time in microseconds on stdout
 *
 * It joins INIT_PID's PID namespace for its children, and there a measuring
 * process M forks D, which forks N children that exit at once. D waits (without
 * reaping) until all N are zombies, takes the start time, and exits: the kernel
 * re-parents the N zombies to the namespace's init and sends it SIGCHLD. M then
 * waits until every one of the N PIDs is gone (kill(pid, 0) fails with ESRCH,
 * which happens only once the zombie is reaped) and prints the elapsed time.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

struct shared {
	struct timespec start;
	int ok;
	pid_t pids[];
};

static long long ns_since(const struct timespec *t)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return (now.tv_sec - t->tv_sec) * 1000000000LL + (now.tv_nsec - t->tv_nsec);
}

static int run_d(struct shared *sh, int n)
{
	for (int i = 0; i < n; i++) {
		pid_t p = fork();
		if (p == 0)
			_exit(0);
		if (p < 0)
			return 1;
		sh->pids[i] = p;
	}
	for (int i = 0; i < n; i++) {
		siginfo_t si;
		if (waitid(P_PID, sh->pids[i], &si, WEXITED | WNOWAIT) != 0)
			return 1;
	}
	sh->ok = 1;
	clock_gettime(CLOCK_MONOTONIC, &sh->start);
	return 0;
}

static int run_m(struct shared *sh, int n)
{
	pid_t d = fork();
	if (d < 0)
		return 1;
	if (d == 0)
		_exit(run_d(sh, n));
	int status;
	if (waitpid(d, &status, 0) != d || !WIFEXITED(status) || WEXITSTATUS(status) || !sh->ok)
		return 1;
	const struct timespec pause = { 0, 20000 };
	for (int i = 0; i < n; i++)
		while (kill(sh->pids[i], 0) == 0 || errno != ESRCH)
			nanosleep(&pause, NULL);
	dprintf(1, "%lld\n", ns_since(&sh->start) / 1000);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: pause-reap INIT_PID N\n");
		return 2;
	}
	int n = atoi(argv[2]);
	char path[64];
	snprintf(path, sizeof path, "/proc/%s/ns/pid", argv[1]);
	int ns = open(path, O_RDONLY | O_CLOEXEC);
	if (ns < 0 || setns(ns, CLONE_NEWPID) != 0) {
		perror(path);
		return 1;
	}
	struct shared *sh = mmap(NULL, sizeof *sh + n * sizeof(pid_t), PROT_READ | PROT_WRITE,
				 MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (sh == MAP_FAILED)
		return 1;
	fflush(stdout);
	pid_t m = fork();
	if (m == 0)
		_exit(run_m(sh, n));
	int status;
	if (m < 0 || waitpid(m, &status, 0) != m || !WIFEXITED(status))
		return 1;
	return WEXITSTATUS(status);
}
