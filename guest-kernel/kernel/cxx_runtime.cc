// The pieces of the C++ ABI a freestanding kernel must provide itself
// (DESIGN.md decision 4). Heap operators come with the heap.
#include "guest-kernel/kernel/exit.h"

extern "C" {

// A pure virtual call means a broken object: there is no recovery.
void __cxa_pure_virtual() { panic("pure virtual function called"); }

// Static destructors never run: the kernel ends by leaving the VM.
int __cxa_atexit(void (*)(void*), void*, void*) { return 0; }
void* __dso_handle = nullptr;

}  // extern "C"

using InitFn = void (*)();
extern "C" InitFn __init_array_start[], __init_array_end[];

void run_global_constructors() {
  for (InitFn* f = __init_array_start; f != __init_array_end; ++f) (*f)();
}
