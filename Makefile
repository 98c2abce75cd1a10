# One build for everything: host programs (release and sanitized flavours),
# the freestanding guest kernel, the tests. Each folder adds its sources
# through a module.mk; this file holds the rules they share.
#
#   make            build the VMM, the guest kernel and the host tools
#   make run        boot the guest kernel in our VMM (nested where needed)
#   make test       every suite; ends with "N passed, N failed"
#   make soak       long randomized runs (not part of make test)
#   make bench      benchmarks, tables under build/bench/

BUILD      := build
# A failed recipe must not leave a half-written target that looks current.
.DELETE_ON_ERROR:
SHELL      := /bin/bash
.DEFAULT_GOAL := all

# ---- host C++ ---------------------------------------------------------------
HOST_CXX      ?= g++
HOST_CPPFLAGS := -I. -MMD -MP
HOST_CXXFLAGS := -std=c++20 -Wall -Wextra -g
REL_FLAGS     := -O2
# The tests use this flavour: ASan and UBSan on every line of host code.
SAN_FLAGS     := -O1 -fno-omit-frame-pointer -fsanitize=address,undefined \
                 -fno-sanitize-recover=undefined

# Filled in by the module.mk files.
HOST_PROGRAMS  :=   # names; each sets <name>_SRCS and optionally <name>_LIBS
SG_SRCS        :=   # storage-guests protocol code: host and guest alike
UNIT_TESTS     :=   # suite names; each sets <name>_TEST_SRCS (GoogleTest),
                    # built to build/san/test-<name> and run by make test
GUEST_SRCS     :=   # guest kernel C++ sources
GUEST_ASM      :=   # guest kernel assembly (.S)

# ---- guest (freestanding) C++ -----------------------------------------------
GUEST_CXX      ?= g++
GUEST_CXXFLAGS := -std=c++20 -Wall -Wextra -g -O2 -ffreestanding \
                  -fno-exceptions -fno-rtti -fno-asynchronous-unwind-tables \
                  -mno-red-zone -fno-pic -fno-pie -fno-stack-protector \
                  -fno-omit-frame-pointer -fno-threadsafe-statics \
                  -ffunction-sections -fdata-sections
GUEST_CPPFLAGS := -I. -MMD -MP
GUEST_LDFLAGS  := -nostdlib -static -no-pie -Wl,--gc-sections \
                  -Wl,-z,max-page-size=4096 -Wl,--build-id=none

# vmm/ first: test and fuzz modules link its library (VMM_LIB_SRCS).
include vmm/module.mk $(filter-out vmm/module.mk,$(sort $(wildcard */module.mk */*/module.mk)))

rel_objs = $(patsubst %.cc,$(BUILD)/obj/rel/%.o,$(1))
san_objs = $(patsubst %.cc,$(BUILD)/obj/san/%.o,$(1))

$(BUILD)/obj/rel/%.o: %.cc | deps
	@mkdir -p $(@D)
	$(HOST_CXX) $(HOST_CPPFLAGS) $(HOST_CXXFLAGS) $(REL_FLAGS) -c $< -o $@

$(BUILD)/obj/san/%.o: %.cc | deps
	@mkdir -p $(@D)
	$(HOST_CXX) $(HOST_CPPFLAGS) $(HOST_CXXFLAGS) $(SAN_FLAGS) -c $< -o $@

# Every host program is built twice: build/NAME (release, what users run)
# and build/san/NAME (sanitized, what the tests run).
define host_program
$(BUILD)/$(1): $(call rel_objs,$($(1)_SRCS))
	@mkdir -p $$(@D)
	$$(HOST_CXX) $$(HOST_CXXFLAGS) $$(REL_FLAGS) -o $$@ $$^ $$($(1)_LIBS)
$(BUILD)/san/$(1): $(call san_objs,$($(1)_SRCS))
	@mkdir -p $$(@D)
	$$(HOST_CXX) $$(HOST_CXXFLAGS) $$(SAN_FLAGS) -o $$@ $$^ $$($(1)_LIBS)
endef
$(foreach p,$(HOST_PROGRAMS),$(eval $(call host_program,$(p))))

UNIT_TEST_LIBS := -lgtest -lgtest_main -pthread
define unit_test
$(BUILD)/san/test-$(1): $(call san_objs,$($(1)_TEST_SRCS))
	@mkdir -p $$(@D)
	$$(HOST_CXX) $$(HOST_CXXFLAGS) $$(SAN_FLAGS) -o $$@ $$^ $$($(1)_TEST_LIBS) $$(UNIT_TEST_LIBS)
endef
$(foreach t,$(UNIT_TESTS),$(eval $(call unit_test,$(t))))
UNIT_TEST_BINS := $(addprefix $(BUILD)/san/test-,$(UNIT_TESTS))

# ---- guest objects ----------------------------------------------------------
$(BUILD)/obj/guest/%.o: %.cc | deps
	@mkdir -p $(@D)
	$(GUEST_CXX) $(GUEST_CPPFLAGS) $(GUEST_CXXFLAGS) -c $< -o $@

$(BUILD)/obj/guest/%.o: $(BUILD)/obj/guest/%.S
	$(GUEST_CXX) -c $< -o $@

$(BUILD)/obj/guest/%.o: %.S | deps
	@mkdir -p $(@D)
	$(GUEST_CXX) $(GUEST_CPPFLAGS) -c $< -o $@

# The services' protocol code (SG_SRCS) is part of the kernel: the guest's
# service runtime runs the same state machines the simulator does.
GUEST_OBJS := $(patsubst %.S,$(BUILD)/obj/guest/%.o,$(GUEST_ASM)) \
              $(patsubst %.cc,$(BUILD)/obj/guest/%.o,$(GUEST_SRCS) $(SG_SRCS))

# libstdc++.a supplies the container internals (DESIGN.md decision 4); the
# kernel supplies operator new/delete, mem* and the __throw_* hooks.
# Two passes: link with an empty symbol table, generate the table from that
# image, link again. The table is the last section, so no code moves; the
# check below proves it.
GUEST_LINK = $(GUEST_CXX) $(GUEST_LDFLAGS) -T boot/kernel.ld -o $(1) $(GUEST_OBJS) $(2) \
	    -Wl,--start-group -lstdc++ -lgcc -Wl,--end-group
$(BUILD)/obj/guest/ksyms-empty.S:
	@mkdir -p $(@D)
	scripts/gen-ksyms < /dev/null > $@
$(BUILD)/guest-kernel.elf: $(GUEST_OBJS) boot/kernel.ld scripts/gen-ksyms $(BUILD)/obj/guest/ksyms-empty.o
	$(call GUEST_LINK,$@.pass1,$(BUILD)/obj/guest/ksyms-empty.o)
	nm -n $@.pass1 | scripts/gen-ksyms > $(BUILD)/obj/guest/ksyms.S
	$(GUEST_CXX) -c $(BUILD)/obj/guest/ksyms.S -o $(BUILD)/obj/guest/ksyms.o
	$(call GUEST_LINK,$@,$(BUILD)/obj/guest/ksyms.o)
	@cmp -s <(nm -n $@.pass1 | grep -v -e ksyms_ -e __kernel_end) <(nm -n $@ | grep -v -e ksyms_ -e __kernel_end) || \
	    { echo "guest-kernel: symbols moved between link passes" >&2; rm -f $@; exit 1; }
	@rm -f $@.pass1

# ---- top-level targets ------------------------------------------------------
.PHONY: all deps run test soak bench clean freestanding-check
all: $(addprefix $(BUILD)/,$(HOST_PROGRAMS)) $(BUILD)/guest-kernel.elf

# Installs missing Debian packages when root, otherwise names the exact
# apt-get line and stops.
deps:
	@scripts/deps

# The tests run the sanitized programs only, so make test builds no release
# flavour (half the compile time); make run and the benchmarks build those.
TEST_ARTIFACTS := $(BUILD)/guest-kernel.elf freestanding-check $(addprefix $(BUILD)/san/,$(HOST_PROGRAMS)) \
                  $(UNIT_TEST_BINS) $(EXTRA_TEST_ARTIFACTS)

# The protocol code must also build with the guest kernel's flags.
freestanding-check: $(patsubst %.cc,$(BUILD)/obj/guest/%.o,$(SG_SRCS))

run: all
	@scripts/raft demo --nodes 3

test: deps
	@$(MAKE) --no-print-directory -j2 $(TEST_ARTIFACTS)
	@UNIT_TEST_BINS="$(UNIT_TEST_BINS)" tests/run-all

soak: deps
	@$(MAKE) --no-print-directory -j2 $(TEST_ARTIFACTS)
	@UNIT_TEST_BINS="$(UNIT_TEST_BINS)" tests/run-all --soak

bench: all $(BENCH_TARGETS)

clean:
	rm -rf $(BUILD)/obj $(BUILD)/san $(BUILD)/*.elf \
	       $(addprefix $(BUILD)/,$(HOST_PROGRAMS))

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)
