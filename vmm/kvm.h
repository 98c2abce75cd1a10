// RAII wrappers for the three kinds of KVM file descriptor: the system
// (/dev/kvm), a VM and a vCPU. Every failed ioctl throws KvmError naming the
// ioctl and errno, so a failure is never silent and never anonymous.
#pragma once

#include <linux/kvm.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

namespace vmm {

// Linux 6.1's uapi headers declare trailing arrays with __DECLARE_FLEX_ARRAY,
// which in C++ inserts an empty struct (1 byte) before the array: g++ then
// places kvm_cpuid2::entries at offset 12 instead of 8 and the ioctl numbers
// encode the wrong size. So variable-length KVM structures are laid out by
// hand here, with the C layout: an 8-byte header, then the array.
struct KvmFlexHeader {
  uint32_t count;  // nent, nr, nmsrs
  uint32_t flags_or_padding;
};
static_assert(sizeof(KvmFlexHeader) == 8);
constexpr unsigned long kKvmGetSupportedCpuid = _IOC(_IOC_READ | _IOC_WRITE, KVMIO, 0x05, sizeof(KvmFlexHeader));
constexpr unsigned long kKvmSetCpuid2 = _IOC(_IOC_WRITE, KVMIO, 0x90, sizeof(KvmFlexHeader));
constexpr unsigned long kKvmSetGsiRouting = _IOC(_IOC_WRITE, KVMIO, 0x6a, sizeof(KvmFlexHeader));
constexpr unsigned long kKvmGetMsrs = _IOC(_IOC_READ | _IOC_WRITE, KVMIO, 0x88, sizeof(KvmFlexHeader));
constexpr unsigned long kKvmSetMsrs = _IOC(_IOC_WRITE, KVMIO, 0x89, sizeof(KvmFlexHeader));

// A header followed by `n` entries of T, as one aligned buffer.
template <typename T>
class KvmFlexBuffer {
 public:
  explicit KvmFlexBuffer(uint32_t n) : storage_((sizeof(KvmFlexHeader) + n * sizeof(T) + 7) / 8) {
    header()->count = n;
  }
  KvmFlexHeader* header() { return reinterpret_cast<KvmFlexHeader*>(storage_.data()); }
  T* entries() { return reinterpret_cast<T*>(reinterpret_cast<uint8_t*>(storage_.data()) + sizeof(KvmFlexHeader)); }
  void* data() { return storage_.data(); }

 private:
  std::vector<uint64_t> storage_;
};

class KvmError : public std::runtime_error {
 public:
  KvmError(const std::string& what, int err);
  int err() const { return err_; }

 private:
  int err_;
};

// An owned file descriptor.
class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  Fd(Fd&& o) noexcept : fd_(o.release()) {}
  Fd& operator=(Fd&& o) noexcept;
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd();
  int get() const { return fd_; }
  int release();
  explicit operator bool() const { return fd_ >= 0; }

 private:
  int fd_ = -1;
};

// ioctl that throws on failure; `name` is the request's name for the error.
long checked_ioctl(int fd, unsigned long request, void* arg, const char* name);
long checked_ioctl(int fd, unsigned long request, unsigned long arg, const char* name);
#define KVM_IOCTL(fd, req, arg) ::vmm::checked_ioctl((fd), (req), (arg), #req)

class Kvm {
 public:
  // Opens /dev/kvm (or `path`) and checks the API version.
  explicit Kvm(const char* path = "/dev/kvm");
  int fd() const { return fd_.get(); }
  int check_extension(long cap) const;
  int vcpu_mmap_size() const;
  // The CPUID leaves KVM can offer a guest on this host.
  std::vector<kvm_cpuid_entry2> supported_cpuid() const;

 private:
  Fd fd_;
};

class Vcpu {
 public:
  Vcpu(int vm_fd, int index, int mmap_size);
  ~Vcpu();
  Vcpu(const Vcpu&) = delete;
  Vcpu& operator=(const Vcpu&) = delete;

  int fd() const { return fd_.get(); }
  int index() const { return index_; }
  kvm_run* run_area() const { return run_; }
  // KVM_RUN; returns false when interrupted by a signal (EINTR/EAGAIN).
  bool run();

  kvm_regs regs() const;
  void set_regs(const kvm_regs& r);
  kvm_sregs sregs() const;
  void set_sregs(const kvm_sregs& s);
  void set_cpuid(const std::vector<kvm_cpuid_entry2>& entries);
  kvm_mp_state mp_state() const;

 private:
  Fd fd_;
  int index_;
  kvm_run* run_ = nullptr;
  int mmap_size_;
};

class Vm {
 public:
  explicit Vm(const Kvm& kvm);
  int fd() const { return fd_.get(); }
  void set_memory_region(uint32_t slot, uint64_t gpa, uint64_t size, void* host, uint32_t flags = 0);
  // The in-kernel LAPIC, IOAPIC and PIC, and the PIT.
  void create_irqchip();
  void create_pit();
  // KVM_ENABLE_CAP on the VM with one argument.
  void enable_cap(uint32_t cap, uint64_t arg0);
  void set_tss_addr(uint64_t gpa);
  void set_identity_map_addr(uint64_t gpa);
  std::unique_ptr<Vcpu> create_vcpu(int index, int mmap_size);

  // Interrupt plumbing (vmm/irq/ wraps these). KVM_SET_GSI_ROUTING replaces
  // the whole routing table with `entries`.
  void set_gsi_routing(std::span<const kvm_irq_routing_entry> entries);
  // KVM_IRQFD: binds (assign) or unbinds an eventfd to a GSI.
  void set_irqfd(int eventfd, uint32_t gsi, bool assign);
  // KVM_IOEVENTFD with the caller's flags (assign or KVM_IOEVENTFD_FLAG_DEASSIGN).
  void set_ioeventfd(const kvm_ioeventfd& request);
  // KVM_SIGNAL_MSI without throwing: > 0 delivered, 0 blocked by the guest
  // (e.g. its LAPIC is disabled), -errno on error (KVM's "no vCPU matched
  // the destination" arrives as -1, i.e. -EPERM). A guest-chosen message
  // can make it fail, so the caller decides whether that is fatal.
  int signal_msi(uint64_t address, uint32_t data);

 private:
  Fd fd_;
};

}  // namespace vmm
