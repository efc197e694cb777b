/*
 * pause: a pod sandbox's PID 1 with the behaviour of the Kubernetes pause
 * container, written for bench/cri-sandbox.sh (the comparison image); not
 * part of stasis.
 *
 * It blocks in pause(2). SIGINT and SIGTERM end it with status 0; SIGCHLD
 * reaps every child that has exited (the orphans the kernel re-parents to a
 * PID namespace's init). Built static (gcc -static), it is the "C pause"
 * that bench/cri-sandbox.sh packs with `stasis sandbox-image --pause`.
 */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static void on_term(int sig)
{
	(void)sig;
	_exit(0);
}

static void on_child(int sig)
{
	(void)sig;
	while (waitpid(-1, NULL, WNOHANG) > 0)
		;
}

static void handle(int sig, void (*fn)(int), int flags)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = fn;
	sa.sa_flags = flags;
	sigemptyset(&sa.sa_mask);
	if (sigaction(sig, &sa, NULL) < 0)
		_exit(1);
}

int main(void)
{
	handle(SIGINT, on_term, 0);
	handle(SIGTERM, on_term, 0);
	handle(SIGCHLD, on_child, SA_NOCLDSTOP | SA_RESTART);
	for (;;)
		pause();
}
