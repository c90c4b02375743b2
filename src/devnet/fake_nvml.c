/* A stand-in for NVIDIA's libnvidia-ml.so.1, for tests on machines without an NVIDIA GPU.
 * It answers the NVML calls Island makes (through nvml-wrapper) for FAKE_NVML_GPUS cards
 * (default 2, at most 4) so the real NVML code path runs: detection, live figures, GPU
 * selection in the UI and the heartbeat. Live figures move on every query so charts move.
 * Only ever loaded through LD_LIBRARY_PATH by tests; never installed. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef int nvmlReturn_t;
enum { OK = 0, INVALID_ARGUMENT = 2, INSUFFICIENT_SIZE = 7 };

struct fake_gpu { const char *name; const char *uuid; unsigned long long vram; unsigned int power_limit_mw; };
static const struct fake_gpu GPUS[4] = {
    { "NVIDIA GeForce RTX 4090", "GPU-00000000-fake-4090-0000-000000000000", 24ULL << 30, 450000 },
    { "NVIDIA RTX A4000", "GPU-11111111-fake-a400-0000-000000000001", 16ULL << 30, 140000 },
    { "NVIDIA GeForce RTX 3060", "GPU-22222222-fake-3060-0000-000000000002", 12ULL << 30, 170000 },
    { "Tesla T4", "GPU-33333333-fake-t400-0000-000000000003", 16ULL << 30, 70000 },
};
static unsigned int ticks;

typedef struct { unsigned int version; unsigned long long total, reserved, free, used; } nvmlMemory_v2_t;
typedef struct { unsigned long long total, free, used; } nvmlMemory_t;
typedef struct { unsigned int gpu, memory; } nvmlUtilization_t;
typedef const struct fake_gpu *nvmlDevice_t;

static unsigned int count(void) {
  const char *env = getenv("FAKE_NVML_GPUS");
  int n = env ? atoi(env) : 2;
  return n < 0 ? 0 : n > 4 ? 4 : (unsigned int)n;
}

static nvmlReturn_t copy(char *out, unsigned int len, const char *s) {
  if (!out || strlen(s) + 1 > len) return INSUFFICIENT_SIZE;
  strcpy(out, s);
  return OK;
}

static unsigned int slot(nvmlDevice_t d) { return (unsigned int)(d - GPUS); }

nvmlReturn_t nvmlInit_v2(void) { return OK; }
nvmlReturn_t nvmlInitWithFlags(unsigned int flags) { (void)flags; return OK; }
nvmlReturn_t nvmlShutdown(void) { return OK; }
const char *nvmlErrorString(nvmlReturn_t r) { return r == OK ? "Success" : "fake NVML error"; }

nvmlReturn_t nvmlSystemGetDriverVersion(char *out, unsigned int len) { return copy(out, len, "550.54.14"); }

nvmlReturn_t nvmlDeviceGetCount_v2(unsigned int *n) { *n = count(); return OK; }

nvmlReturn_t nvmlDeviceGetHandleByIndex_v2(unsigned int i, nvmlDevice_t *d) {
  if (i >= count()) return INVALID_ARGUMENT;
  *d = &GPUS[i];
  return OK;
}

nvmlReturn_t nvmlDeviceGetName(nvmlDevice_t d, char *out, unsigned int len) { return copy(out, len, d->name); }
nvmlReturn_t nvmlDeviceGetUUID(nvmlDevice_t d, char *out, unsigned int len) { return copy(out, len, d->uuid); }

static unsigned long long used(nvmlDevice_t d) { return (d->vram / 100) * (10 + (ticks * 3 + slot(d) * 17) % 60); }

nvmlReturn_t nvmlDeviceGetMemoryInfo_v2(nvmlDevice_t d, nvmlMemory_v2_t *m) {
  m->total = d->vram; m->reserved = 0; m->used = used(d); m->free = d->vram - m->used;
  return OK;
}

nvmlReturn_t nvmlDeviceGetMemoryInfo(nvmlDevice_t d, nvmlMemory_t *m) {
  m->total = d->vram; m->used = used(d); m->free = d->vram - m->used;
  return OK;
}

nvmlReturn_t nvmlDeviceGetUtilizationRates(nvmlDevice_t d, nvmlUtilization_t *u) {
  ticks++;
  u->gpu = (ticks * 7 + slot(d) * 31) % 100;
  u->memory = (ticks * 5 + slot(d) * 13) % 100;
  return OK;
}

nvmlReturn_t nvmlDeviceGetTemperature(nvmlDevice_t d, int sensor, unsigned int *t) {
  (void)sensor;
  *t = 45 + (ticks + slot(d) * 5) % 20;
  return OK;
}

nvmlReturn_t nvmlDeviceGetPowerUsage(nvmlDevice_t d, unsigned int *mw) {
  *mw = d->power_limit_mw / 100 * (20 + ticks % 60);
  return OK;
}

nvmlReturn_t nvmlDeviceGetEnforcedPowerLimit(nvmlDevice_t d, unsigned int *mw) { *mw = d->power_limit_mw; return OK; }
