/* A workload of a given resident size for bench/checkpoint.sh: allocates
 * MB megabytes, writes every page (a pattern, not zeros, so that no page is
 * shared or skipped), prints "ready", then sleeps until killed. */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int main(int argc, char **argv) {
    size_t mb = argc > 1 ? strtoul(argv[1], NULL, 10) : 10;
    size_t len = mb << 20;
    unsigned char *p = malloc(len);
    if (!p)
        return 1;
    for (size_t i = 0; i < len; i++)
        p[i] = (unsigned char)(i * 2654435761u >> 13);
    printf("ready %zu\n", mb);
    fflush(stdout);
    for (;;)
        pause();
}
