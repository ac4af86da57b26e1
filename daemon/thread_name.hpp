#pragma once
// Names the calling thread, so that `top -H`, `ps -L` and perf show which
// of the daemon's threads spends the CPU. Linux keeps 15 characters.
#include <pthread.h>

#include <string>

namespace tscb::daemon {

inline void NameThisThread(const std::string& name) {
  pthread_setname_np(pthread_self(), name.substr(0, 15).c_str());
}

}  // namespace tscb::daemon
