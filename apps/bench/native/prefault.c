/*
 * Faults in (and gives back) as much memory as an upload round is about to fill, outside anything measured.
 *
 * On a virtual machine with free page reporting, memory the machine freed goes back to the hypervisor a few seconds
 * later, and the first write into each such page again costs a host fault. An upload round grows the page cache by
 * the file's size: whichever server's round happened to come after the memory went back paid for it (2-5x the
 * kernel CPU of the same upload into memory still backed). Touched here right before the round and freed, the pages
 * are backed again when the server's upload takes them, whichever server it is.
 *
 * Usage: prefault <MiB>. Exits 0, or 1 when the memory could not be mapped.
 */
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

int main(int argc, char **argv) {
  unsigned long mib = argc > 1 ? strtoul(argv[1], NULL, 10) : 0;
  if (mib == 0 || mib > (1UL << 20)) {
    fprintf(stderr, "usage: prefault <MiB> (1 to 1048576)\n");
    return 2;
  }
  size_t length = (size_t)mib << 20;
  char *memory = mmap(NULL, length, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (memory == MAP_FAILED) {
    perror("prefault: mmap");
    return 1;
  }
  long page = sysconf(_SC_PAGESIZE);
  for (size_t at = 0; at < length; at += (size_t)page) memory[at] = 1;
  munmap(memory, length);
  return 0;
}
