#include "vmm/irq/eventfd.h"

#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>

namespace vmm {

EventFd::EventFd() {
  int fd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (fd < 0) throw KvmError("eventfd", errno);
  fd_ = Fd(fd);
}

void EventFd::signal() const {
  const uint64_t one = 1;
  ssize_t r;
  do r = ::write(fd_.get(), &one, sizeof one);
  while (r < 0 && errno == EINTR);
  // EAGAIN means the counter is saturated: a wake-up is pending anyway.
}

uint64_t EventFd::consume() const {
  uint64_t v = 0;
  ssize_t r;
  do r = ::read(fd_.get(), &v, sizeof v);
  while (r < 0 && errno == EINTR);
  return r == sizeof v ? v : 0;
}

IrqFd::IrqFd(IrqBackend& backend, uint32_t gsi) : backend_(backend), gsi_(gsi) {
  backend_.set_irqfd(event_.fd(), gsi_, true);
}

IrqFd::~IrqFd() {
  try {
    backend_.set_irqfd(event_.fd(), gsi_, false);
  } catch (const std::exception& e) {
    // Closing the eventfd below makes KVM drop the binding anyway.
    std::fprintf(stderr, "vmm: irqfd for GSI %u: %s\n", gsi_, e.what());
  }
}

IoEventFd::IoEventFd(IrqBackend& backend, const EventFd& event, IoSpace space, uint64_t addr, uint32_t len,
                     std::optional<uint64_t> datamatch)
    : backend_(backend) {
  request_.addr = addr;
  request_.len = len;
  request_.fd = event.fd();
  request_.flags = space == IoSpace::kPio ? KVM_IOEVENTFD_FLAG_PIO : 0;
  if (datamatch) {
    request_.flags |= KVM_IOEVENTFD_FLAG_DATAMATCH;
    request_.datamatch = *datamatch;
  }
  backend_.set_ioeventfd(request_);
}

IoEventFd::~IoEventFd() {
  // KVM finds the binding to remove by all of fd, address, length, space
  // and datamatch: the request we assigned with, plus the deassign flag.
  kvm_ioeventfd req = request_;
  req.flags |= KVM_IOEVENTFD_FLAG_DEASSIGN;
  try {
    backend_.set_ioeventfd(req);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "vmm: ioeventfd at 0x%llx: %s\n", static_cast<unsigned long long>(request_.addr), e.what());
  }
}

}  // namespace vmm
