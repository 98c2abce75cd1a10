# boot/efi: the GNU-EFI loader build/efi/BOOTX64.EFI (see boot/efi/README.md).
# GNU-EFI's recipe: objects built as position-independent code, linked into
# an ELF shared object with its crt0 and linker script, then objcopy'd to a
# PE32+ EFI application; crt0 applies the relocations at load time.
#
#   make build/efi/BOOTX64.EFI   (also built by make test; tested by tests/efi/run)

EFI_INC     := /usr/include/efi
EFI_LIB     := /usr/lib
EFI_CC      ?= gcc
# -mno-red-zone: firmware interrupt handlers run on our stack.
# -fshort-wchar: L"" strings are UCS-2 (CHAR16) as UEFI wants.
# -maccumulate-outgoing-args: gnu-efi's advice with ms_abi calls.
# GNU_EFI_USE_MS_ABI: EFIAPI is __attribute__((ms_abi)); calls need no thunk.
EFI_CFLAGS  := -std=gnu11 -Wall -Wextra -O2 -ffreestanding -fpic -fshort-wchar \
               -fno-stack-protector -fno-strict-aliasing -mno-red-zone \
               -maccumulate-outgoing-args -DGNU_EFI_USE_MS_ABI \
               -I$(EFI_INC) -I$(EFI_INC)/x86_64 -MMD -MP
EFI_LDFLAGS := -nostdlib -znocombreloc -shared -Bsymbolic --no-undefined \
               -T $(EFI_LIB)/elf_x86_64_efi.lds
EFI_OBJS    := $(BUILD)/obj/efi/loader.o $(BUILD)/obj/efi/trampoline.o

$(BUILD)/obj/efi/%.o: boot/efi/%.c | deps
	@mkdir -p $(@D)
	$(EFI_CC) $(EFI_CFLAGS) -c $< -o $@

$(BUILD)/obj/efi/%.o: boot/efi/%.S | deps
	@mkdir -p $(@D)
	$(EFI_CC) $(EFI_CFLAGS) -c $< -o $@

# The ELF form keeps the symbols: useful with gdb against QEMU.
$(BUILD)/efi/BOOTX64.so: $(EFI_OBJS)
	@mkdir -p $(@D)
	ld $(EFI_LDFLAGS) -o $@ $(EFI_LIB)/crt0-efi-x86_64.o $(EFI_OBJS) \
	    -L$(EFI_LIB) -lefi -lgnuefi

# Subsystem 10: an EFI application.
$(BUILD)/efi/BOOTX64.EFI: $(BUILD)/efi/BOOTX64.so
	objcopy -j .text -j .sdata -j .data -j .dynamic -j .dynsym -j .rel -j .rela \
	    -j '.rel.*' -j '.rela.*' -j .reloc --target efi-app-x86_64 --subsystem=10 $< $@

.PHONY: efi
efi: $(BUILD)/efi/BOOTX64.EFI

EXTRA_TEST_ARTIFACTS += $(BUILD)/efi/BOOTX64.EFI

# make clean also removes the loader (the top-level rule knows nothing of it).
.PHONY: clean-efi
clean-efi:
	rm -rf $(BUILD)/efi
clean: clean-efi
