import { describe, expect, it } from 'vitest';
import { DetailsError } from '../contract.ts';
import { parseUdevRule } from './rules.ts';

const PATH = 'details.udevRules[1]';

const summary = (text: string): string[] =>
  parseUdevRule(text, PATH).expressions.map(
    (e) => `${e.key}${e.name === undefined ? '' : `{${e.name}}`}${e.negate ? '!=' : '=='}${e.value.source}`,
  );

describe('parseUdevRule', () => {
  it.each([
    ['KERNEL=="video[0-9]*"', ['KERNEL==video[0-9]*']],
    [
      'KERNEL=="video[0-9]*",SUBSYSTEM=="video4linux", ATTR{idVendor}=="05a9"',
      ['KERNEL==video[0-9]*', 'SUBSYSTEM==video4linux', 'ATTR{idVendor}==05a9'],
    ],
    ['SUBSYSTEMS=="pci"', ['SUBSYSTEMS==pci']],
    ['ATTRS{idVendor}=="0bdd", DRIVERS!="a driver"', ['ATTRS{idVendor}==0bdd', 'DRIVERS!=a driver']],
    ['TAG=="uaccess",ENV{MAJOR}!=""', ['TAG==uaccess', 'ENV{MAJOR}!=']],
    ['KERNEL=="video[0-9]", DEVPATH!="/sys/path/to/device"', ['KERNEL==video[0-9]', 'DEVPATH!=/sys/path/to/device']],
    [
      'ATTR{idVendor}=="0bdd", ENV{a name}=="Keyboard that has a mouse"',
      ['ATTR{idVendor}==0bdd', 'ENV{a name}==Keyboard that has a mouse'],
    ],
    [
      'ENV{ID_PATH}=="?*", KERNEL=="video*|vbi*", DRIVER=="some driver"',
      ['ENV{ID_PATH}==?*', 'KERNEL==video*|vbi*', 'DRIVER==some driver'],
    ],
    ['TAGS=="uaccess"', ['TAGS==uaccess']],
    ['KERNELS=="card[0-9]*"', ['KERNELS==card[0-9]*']],
    ['  SUBSYSTEM == "tty" ,  KERNEL!="ttyS*"  ', ['SUBSYSTEM==tty', 'KERNEL!=ttyS*']],
    ['ATTR{device/vendor}=="0x8086"', ['ATTR{device/vendor}==0x8086']],
  ])('%s', (text, expected) => {
    expect(summary(text)).toEqual(expected);
  });

  it.each([
    ['RUN{builtin}+="uaccess"', 'unsupported key "RUN": it makes udev act on the device; discovery rules only match'],
    ['KERNEL=="x", RUN+="/bin/sh"', 'unsupported key "RUN"'],
    ['SYMLINK+="v4l/by-id/x"', 'unsupported key "SYMLINK"'],
    ['NAME=="another_disk"', 'unsupported key "NAME"'],
    ['ACTION=="add"', 'unsupported key "ACTION": discovery looks at the devices present, not at events'],
    ['LABEL="some label"', 'unsupported key "LABEL"'],
    ['GOTO="end"', 'unsupported key "GOTO"'],
    ['IMPORT{program}="v4l_id $devnode"', 'unsupported key "IMPORT"'],
    ['OPTIONS="x"', 'unsupported key "OPTIONS"'],
    ['OWNER="o"', 'unsupported key "OWNER"'],
    ['GROUP="g"', 'unsupported key "GROUP"'],
    ['MODE="0666"', 'unsupported key "MODE"'],
    ['WAIT_FOR="x"', 'unsupported key "WAIT_FOR"'],
    ['PROGRAM=="x"', 'unsupported key "PROGRAM": it runs a program'],
    ['RESULT=="x"', 'unsupported key "RESULT"'],
    ['TEST{0644}=="x"', 'unsupported key "TEST"'],
    ['CONST{arch}=="x86-64"', 'unsupported key "CONST"'],
    ['SECLABEL{selinux}="x"', 'unsupported key "SECLABEL"'],
    ['SYSCTL{kernel.x}="1"', 'unsupported key "SYSCTL"'],
    ['TAG+="uaccess"', 'unsupported operator "+=" after TAG: it assigns; discovery rules only match (use == or !=)'],
    ['TAG-="uaccess"', 'unsupported operator "-="'],
    ['TAG="uaccess"', 'unsupported operator "="'],
    ['TAG:="uaccess"', 'unsupported operator ":="'],
    ['ENV{X}="1"', 'unsupported operator "=" after ENV{X}'],
    ['TYPO=="blah"', 'unknown key "TYPO"; supported: KERNEL, SUBSYSTEM, DRIVER, DEVPATH, ATTR{name}, ENV{name}, TAG, KERNELS'],
    ['DEVTYPE=="usb_device"', 'unknown key "DEVTYPE" (match ENV{DEVTYPE})'],
    ['kernel=="x"', 'unknown key "kernel"'],
    ['', 'empty rule (it would match every device)'],
    ['   ', 'empty rule'],
    ['KERNEL', 'expected == or != after KERNEL at character 7, found the end of the rule'],
    ['KERNEL=="x" SUBSYSTEM=="y"', 'expected "," between match expressions at character 13'],
    ['KERNEL=="x",', 'the rule ends with ","'],
    ['KERNEL=="x",,KERNEL=="y"', 'expected a key (KERNEL, SUBSYSTEM, ATTRS{name}, …) at character 13, found ",KERNEL==\\"y\\""'],
    ['KERNEL==x', 'the value of KERNEL must be in double quotes at character 9'],
    ["KERNEL=='x'", 'must be in double quotes'],
    ['KERNEL=="x', 'the value of KERNEL has no closing double quote'],
    ['KERNEL=="video[0-9"', 'the value of KERNEL, "video[0-9": "[" is not closed by "]"'],
    ['ATTR=="x"', 'ATTR needs a name: ATTR{name}'],
    ['ATTRS{idVendor=="x"', '"{" after ATTRS is not closed by "}"'],
    ['ATTR{}=="x"', 'ATTR{} needs a name'],
    ['KERNEL{x}=="y"', 'KERNEL takes no {name}'],
    ['ATTR{../../etc/passwd}=="x"', 'an attribute name is a file below the device directory'],
    ['ATTR{/etc/passwd}=="x"', 'an attribute name is a file below the device directory'],
    ['KERNEL=="a\tb"', 'the value of KERNEL has a control character'],
    [Array.from({ length: 33 }, () => 'KERNEL=="x"').join(','), 'at most 32 match expressions'],
    [`KERNEL=="${'x'.repeat(1020)}"`, 'a rule is at most 1024 characters (this one has 1030)'],
  ])('refuses %j', (text, message) => {
    try {
      parseUdevRule(text, PATH);
      expect.unreachable('should have thrown');
    } catch (error) {
      expect(error).toBeInstanceOf(DetailsError);
      expect((error as DetailsError).path).toBe(PATH);
      expect((error as DetailsError).message).toContain(`${PATH}: `);
      expect((error as DetailsError).message).toContain(message);
    }
  });
});
