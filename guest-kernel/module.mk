# The guest kernel: freestanding C++ linked with boot/'s entry and script.
GUEST_SRCS += $(wildcard guest-kernel/*/*.cc guest-kernel/*/*/*.cc)
