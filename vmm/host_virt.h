// Which hardware virtualization KVM drives on this host, for the VMM to
// report: VMX with or without EPT (kvm_intel), SVM with or without NPT
// (kvm_amd), or something else (e.g. PVM, which uses neither).
#pragma once

#include <string>

namespace vmm {

std::string describe_host_virtualization();

}  // namespace vmm
