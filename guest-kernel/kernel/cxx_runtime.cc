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

// libstdc++'s containers report errors through these; without exceptions
// they can only stop the kernel, with the reason.
namespace std {
void __throw_bad_alloc() { panic("std::bad_alloc"); }
void __throw_bad_array_new_length() { panic("std::bad_array_new_length"); }
void __throw_length_error(const char* what) { panic("std::length_error: %s", what); }
void __throw_out_of_range(const char* what) { panic("std::out_of_range: %s", what); }
void __throw_out_of_range_fmt(const char* fmt, ...) { panic("std::out_of_range: %s", fmt); }
void __throw_logic_error(const char* what) { panic("std::logic_error: %s", what); }
void __throw_invalid_argument(const char* what) { panic("std::invalid_argument: %s", what); }
void __throw_bad_function_call() { panic("std::bad_function_call"); }
void __throw_bad_optional_access() { panic("std::bad_optional_access"); }
}  // namespace std

extern "C" void abort() { panic("abort() called"); }
extern "C" void __assert_fail(const char* expr, const char* file, unsigned line, const char*) {
  panic("assertion '%s' failed at %s:%u", expr, file, line);
}
