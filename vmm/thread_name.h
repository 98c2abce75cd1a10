// Names the calling thread, so that ps, top, gdb and /proc/PID/task/*/comm
// tell the VMM's threads apart (a stuck cluster is diagnosed by which
// thread is where). Linux keeps 15 characters; longer names are cut.
#pragma once

#include <pthread.h>

#include <string>
#include <string_view>

namespace vmm {

inline void set_thread_name(std::string_view name) {
  std::string cut(name.substr(0, 15));
  pthread_setname_np(pthread_self(), cut.c_str());
}

}  // namespace vmm
