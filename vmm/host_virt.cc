#include "vmm/host_virt.h"

#include <fstream>

namespace vmm {
namespace {

bool exists(const std::string& path) { return std::ifstream(path).good(); }

// Module parameters read "Y"/"N" or "1"/"0".
bool param_on(const std::string& path) {
  std::ifstream f(path);
  std::string v;
  return f >> v && (v == "Y" || v == "1");
}

}  // namespace

std::string describe_host_virtualization() {
  if (exists("/sys/module/kvm_intel/parameters/ept"))
    return param_on("/sys/module/kvm_intel/parameters/ept") ? "Intel VMX with EPT (kvm_intel)"
                                                            : "Intel VMX with shadow paging (kvm_intel, EPT off)";
  if (exists("/sys/module/kvm_amd/parameters/npt"))
    return param_on("/sys/module/kvm_amd/parameters/npt") ? "AMD SVM with NPT (kvm_amd)"
                                                          : "AMD SVM with shadow paging (kvm_amd, NPT off)";
  if (exists("/sys/module/kvm_pvm/parameters/pvm_native") || exists("/sys/module/kvm_pvm"))
    return "PVM, neither VMX nor SVM (kvm_pvm, shadow paging)";
  return "unknown (no kvm_intel or kvm_amd module found)";
}

}  // namespace vmm
