#include "vmm/kvm.h"

#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace vmm {

KvmError::KvmError(const std::string& what, int err)
    : std::runtime_error(what + ": " + std::strerror(err) + " (errno " + std::to_string(err) + ")"),
      err_(err) {}

Fd& Fd::operator=(Fd&& o) noexcept {
  if (this != &o) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = o.release();
  }
  return *this;
}

Fd::~Fd() {
  if (fd_ >= 0) ::close(fd_);
}

int Fd::release() {
  int fd = fd_;
  fd_ = -1;
  return fd;
}

long checked_ioctl(int fd, unsigned long request, void* arg, const char* name) {
  long r;
  do r = ::ioctl(fd, request, arg);
  while (r < 0 && errno == EINTR);
  if (r < 0) throw KvmError(std::string("ioctl ") + name, errno);
  return r;
}

long checked_ioctl(int fd, unsigned long request, unsigned long arg, const char* name) {
  return checked_ioctl(fd, request, reinterpret_cast<void*>(arg), name);
}

Kvm::Kvm(const char* path) {
  int fd = ::open(path, O_RDWR | O_CLOEXEC);
  if (fd < 0) throw KvmError(std::string("cannot open ") + path, errno);
  fd_ = Fd(fd);
  long version = KVM_IOCTL(fd, KVM_GET_API_VERSION, 0ul);
  if (version != KVM_API_VERSION)
    throw KvmError("KVM API version " + std::to_string(version) + ", need " +
                       std::to_string(KVM_API_VERSION),
                   EINVAL);
}

int Kvm::check_extension(long cap) const {
  return static_cast<int>(::ioctl(fd_.get(), KVM_CHECK_EXTENSION, cap));
}

int Kvm::vcpu_mmap_size() const {
  return static_cast<int>(KVM_IOCTL(fd_.get(), KVM_GET_VCPU_MMAP_SIZE, 0ul));
}

std::vector<kvm_cpuid_entry2> Kvm::supported_cpuid() const {
  // The ioctl fails with E2BIG until the buffer is large enough.
  for (uint32_t n = 64; n <= 4096; n *= 2) {
    KvmFlexBuffer<kvm_cpuid_entry2> buf(n);
    if (::ioctl(fd_.get(), kKvmGetSupportedCpuid, buf.data()) == 0)
      return std::vector<kvm_cpuid_entry2>(buf.entries(), buf.entries() + std::min(buf.header()->count, n));
    if (errno != E2BIG) throw KvmError("ioctl KVM_GET_SUPPORTED_CPUID", errno);
  }
  throw KvmError("ioctl KVM_GET_SUPPORTED_CPUID", E2BIG);
}

Vm::Vm(const Kvm& kvm) : fd_(static_cast<int>(KVM_IOCTL(kvm.fd(), KVM_CREATE_VM, 0ul))) {}

void Vm::set_memory_region(uint32_t slot, uint64_t gpa, uint64_t size, void* host, uint32_t flags) {
  kvm_userspace_memory_region r{};
  r.slot = slot;
  r.flags = flags;
  r.guest_phys_addr = gpa;
  r.memory_size = size;
  r.userspace_addr = reinterpret_cast<uint64_t>(host);
  KVM_IOCTL(fd_.get(), KVM_SET_USER_MEMORY_REGION, &r);
}

void Vm::create_irqchip() { KVM_IOCTL(fd_.get(), KVM_CREATE_IRQCHIP, 0ul); }

void Vm::create_pit() {
  kvm_pit_config cfg{};
  cfg.flags = KVM_PIT_SPEAKER_DUMMY;
  KVM_IOCTL(fd_.get(), KVM_CREATE_PIT2, &cfg);
}

void Vm::enable_cap(uint32_t cap, uint64_t arg0) {
  kvm_enable_cap c{};
  c.cap = cap;
  c.args[0] = arg0;
  KVM_IOCTL(fd_.get(), KVM_ENABLE_CAP, &c);
}

void Vm::set_tss_addr(uint64_t gpa) { KVM_IOCTL(fd_.get(), KVM_SET_TSS_ADDR, gpa); }

void Vm::set_identity_map_addr(uint64_t gpa) {
  KVM_IOCTL(fd_.get(), KVM_SET_IDENTITY_MAP_ADDR, &gpa);
}

void Vm::set_gsi_routing(std::span<const kvm_irq_routing_entry> entries) {
  static_assert(sizeof(kvm_irq_routing_entry) == 48, "kvm_irq_routing_entry layout");
  KvmFlexBuffer<kvm_irq_routing_entry> buf(static_cast<uint32_t>(entries.size()));
  buf.header()->flags_or_padding = 0;
  if (!entries.empty()) std::memcpy(buf.entries(), entries.data(), entries.size_bytes());
  checked_ioctl(fd_.get(), kKvmSetGsiRouting, buf.data(), "KVM_SET_GSI_ROUTING");
}

void Vm::set_irqfd(int eventfd, uint32_t gsi, bool assign) {
  kvm_irqfd req{};
  req.fd = static_cast<uint32_t>(eventfd);
  req.gsi = gsi;
  req.flags = assign ? 0 : KVM_IRQFD_FLAG_DEASSIGN;
  KVM_IOCTL(fd_.get(), KVM_IRQFD, &req);
}

void Vm::set_ioeventfd(const kvm_ioeventfd& request) {
  KVM_IOCTL(fd_.get(), KVM_IOEVENTFD, const_cast<kvm_ioeventfd*>(&request));
}

int Vm::signal_msi(uint64_t address, uint32_t data) {
  kvm_msi msi{};
  msi.address_lo = static_cast<uint32_t>(address);
  msi.address_hi = static_cast<uint32_t>(address >> 32);
  msi.data = data;
  long r;
  do r = ::ioctl(fd_.get(), KVM_SIGNAL_MSI, &msi);
  while (r < 0 && errno == EINTR);
  return r < 0 ? -errno : static_cast<int>(r);
}

std::unique_ptr<Vcpu> Vm::create_vcpu(int index, int mmap_size) {
  return std::make_unique<Vcpu>(fd_.get(), index, mmap_size);
}

Vcpu::Vcpu(int vm_fd, int index, int mmap_size)
    : fd_(static_cast<int>(KVM_IOCTL(vm_fd, KVM_CREATE_VCPU, static_cast<unsigned long>(index)))),
      index_(index),
      mmap_size_(mmap_size) {
  void* p = ::mmap(nullptr, mmap_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd_.get(), 0);
  if (p == MAP_FAILED) throw KvmError("mmap of the vCPU run area", errno);
  run_ = static_cast<kvm_run*>(p);
}

Vcpu::~Vcpu() {
  if (run_) ::munmap(run_, mmap_size_);
}

bool Vcpu::run() {
  if (::ioctl(fd_.get(), KVM_RUN, 0) == 0) return true;
  if (errno == EINTR || errno == EAGAIN) return false;
  throw KvmError("ioctl KVM_RUN", errno);
}

kvm_regs Vcpu::regs() const {
  kvm_regs r{};
  KVM_IOCTL(fd_.get(), KVM_GET_REGS, &r);
  return r;
}

void Vcpu::set_regs(const kvm_regs& r) { KVM_IOCTL(fd_.get(), KVM_SET_REGS, const_cast<kvm_regs*>(&r)); }

kvm_sregs Vcpu::sregs() const {
  kvm_sregs s{};
  KVM_IOCTL(fd_.get(), KVM_GET_SREGS, &s);
  return s;
}

void Vcpu::set_sregs(const kvm_sregs& s) { KVM_IOCTL(fd_.get(), KVM_SET_SREGS, const_cast<kvm_sregs*>(&s)); }

void Vcpu::set_cpuid(const std::vector<kvm_cpuid_entry2>& entries) {
  KvmFlexBuffer<kvm_cpuid_entry2> buf(static_cast<uint32_t>(entries.size()));
  std::memcpy(buf.entries(), entries.data(), entries.size() * sizeof(kvm_cpuid_entry2));
  checked_ioctl(fd_.get(), kKvmSetCpuid2, buf.data(), "KVM_SET_CPUID2");
}

kvm_mp_state Vcpu::mp_state() const {
  kvm_mp_state s{};
  KVM_IOCTL(fd_.get(), KVM_GET_MP_STATE, &s);
  return s;
}

}  // namespace vmm
