/* replay.c: runs a libFuzzer target over files and folders without libFuzzer, so that `make
   test` replays the corpora with the ordinary compiler: replay PATH... (exit 0 when every input
   passed; a failing input aborts with the target's message). */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static long ran;

static int run_file(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f) return perror(path), 1;
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  rewind(f);
  uint8_t *data = malloc(n > 0 ? (size_t)n : 1);
  if (!data || fread(data, 1, (size_t)n, f) != (size_t)n) {
    fclose(f);
    free(data);
    return fprintf(stderr, "%s: cannot read\n", path), 1;
  }
  fclose(f);
  LLVMFuzzerTestOneInput(data, (size_t)n);
  free(data);
  ran++;
  return 0;
}

static int run_path(const char *path) {
  struct stat st;
  if (stat(path, &st) < 0) return perror(path), 1;
  if (!S_ISDIR(st.st_mode)) return run_file(path);
  DIR *d = opendir(path);
  if (!d) return perror(path), 1;
  int bad = 0;
  for (struct dirent *e; (e = readdir(d));) {
    if (e->d_name[0] == '.') continue;
    char sub[4096];
    snprintf(sub, sizeof sub, "%s/%s", path, e->d_name);
    bad |= run_path(sub);
  }
  closedir(d);
  return bad;
}

int main(int argc, char **argv) {
  if (argc < 2) return fputs("usage: replay PATH...\n", stderr), 2;
  int bad = 0;
  for (int i = 1; i < argc; i++) bad |= run_path(argv[i]);
  printf("%ld inputs replayed\n", ran);
  return bad;
}
