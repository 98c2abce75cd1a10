# The VMM: everything but main.cc is a library the unit tests and fuzz
# targets link too, with the host side of virtio (its device models).
VMM_LIB_SRCS := $(filter-out vmm/main.cc,$(wildcard vmm/*.cc vmm/*/*.cc)) $(wildcard virtio/host/*.cc)
HOST_PROGRAMS += vmm
vmm_SRCS := vmm/main.cc $(VMM_LIB_SRCS)
vmm_LIBS := -pthread -luring

UNIT_TESTS += vmm
vmm_TEST_SRCS := $(wildcard tests/unit/vmm/*.cc) $(VMM_LIB_SRCS)
vmm_TEST_LIBS := -pthread -luring
