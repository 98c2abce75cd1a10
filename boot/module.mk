GUEST_ASM += boot/pvh_entry.S
