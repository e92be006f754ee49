/* shm.h: POSIX shared memory for the Shared* objects: this server's segments, and blocks in them. */
#ifndef SHMGR_SHM_H
#define SHMGR_SHM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "value.h"

/* A block: bytes of a segment that one object owns. Small blocks share segments (one per
   size class, many blocks each: 100,000 small objects are a few dozen mappings and no
   descriptors); a large one has a segment of its own. */
typedef struct shm_block {
  uint8_t *p;       /* the bytes, mapped read-write in this process */
  size_t size;      /* as asked for */
  struct shm_seg *seg; /* the arena's own */
  uint32_t slot;    /* the arena's own */
} shm_block;

/* A new block of size bytes (> 0), zeroed, aligned to 16 bytes in its segment (so that every
   native struct or array alignment holds at its offset too). The pages are reserved at once
   (a full /dev/shm is an error here, never a SIGBUS later). false with *err a new OSError
   naming the cause when shared memory cannot be had (/dev/shm full or missing, too big). */
bool shm_alloc(size_t size, shm_block *b, value **err);
/* Give b's bytes back; a segment left empty is unlinked (one empty one per size class is
   kept for the next block). b is zeroed. */
void shm_free(shm_block *b);
/* The name of b's segment as multiprocessing.shared_memory.SharedMemory(name) takes it (no
   leading '/'; /dev/shm/NAME on Linux), valid while b lives, and b's offset in it. */
const char *shm_name(const shm_block *b);
size_t shm_offset(const shm_block *b);

/* Segments get permission bits mode (the config's shm_mode) exactly, whatever the umask:
   those made so far at once, later ones as they are made. 0600 until set. */
void shm_set_mode(int mode);
/* The server listens on address (its first listener's name, as logged): from now on the
   segments are named after it, those made before are renamed, and any segment named after
   it that is not ours is unlinked (a server that held this address before us crashed:
   binding proves it is gone). */
void shm_claim(const char *address);
/* Unlink every segment of ours and unmap it (the server stops). Blocks still held must not
   be used after. */
void shm_close(void);

/* Figures for operators: segments, their bytes, blocks in use and the bytes they asked for. */
typedef struct shm_figures {
  size_t segments, mapped, blocks, used;
} shm_figures;
shm_figures shm_stats(void);

#endif
