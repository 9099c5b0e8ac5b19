"""The rules of the security audit (gate `security`), one module per rule.

    S1xx  Python code blocks        S101 eval/exec/compile, S102 shell=True, S103 pickle and
                                    yaml.load, S104 block does not parse, S105 verify=False
    S2xx  shell blocks, !`cmd`      S201 curl | sh, S202 rm -rf of / ~ $VAR, S203 chmod 777,
                                    S204 TLS checks off
    S3xx  secrets, in every file    S301 keys and tokens, S302 private keys
    S4xx  hidden Unicode            S401 bidi controls, S402 zero-width, S403 tag characters
    S5xx  instruction override      S501 "ignore previous instructions", S502 jailbreaks
    S6xx  permissions               S601 unrestricted Bash, S602 undeclared !`cmd`,
                                    S603 @file outside the project
    S9xx  the audit itself          S901 suppression without a reason

Each check takes an `AuditFile` and yields findings; `CHECKS` maps codes to checks.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from tallinn.gates.base import Finding
from tallinn.gates.rules.security import (
    bidi_control_character,
    dangerous_recursive_delete,
    download_piped_to_shell,
    dynamic_code_execution,
    file_reference_outside_project,
    hardcoded_secret,
    instruction_override_phrase,
    invisible_tag_character,
    jailbreak_phrase,
    private_key_block,
    python_tls_verification_disabled,
    shell_in_python,
    shell_tls_verification_disabled,
    suppression_without_reason,
    unparsed_python_block,
    unpermitted_shell_command,
    unrestricted_bash,
    unsafe_deserialization,
    world_writable_permissions,
    zero_width_character,
)
from tallinn.gates.rules.security._source import AuditFile, Kind

Check = Callable[[AuditFile], Iterator[Finding]]

CHECKS: dict[str, Check] = {
    module.RULE.code: check
    for module, check in (
        (dynamic_code_execution, dynamic_code_execution.dynamic_code_execution),
        (shell_in_python, shell_in_python.shell_in_python),
        (unsafe_deserialization, unsafe_deserialization.unsafe_deserialization),
        (unparsed_python_block, unparsed_python_block.unparsed_python_block),
        (python_tls_verification_disabled,
         python_tls_verification_disabled.python_tls_verification_disabled),
        (download_piped_to_shell, download_piped_to_shell.download_piped_to_shell),
        (dangerous_recursive_delete, dangerous_recursive_delete.dangerous_recursive_delete),
        (world_writable_permissions, world_writable_permissions.world_writable_permissions),
        (shell_tls_verification_disabled,
         shell_tls_verification_disabled.shell_tls_verification_disabled),
        (hardcoded_secret, hardcoded_secret.hardcoded_secret),
        (private_key_block, private_key_block.private_key_block),
        (bidi_control_character, bidi_control_character.bidi_control_character),
        (zero_width_character, zero_width_character.zero_width_character),
        (invisible_tag_character, invisible_tag_character.invisible_tag_character),
        (instruction_override_phrase, instruction_override_phrase.instruction_override_phrase),
        (jailbreak_phrase, jailbreak_phrase.jailbreak_phrase),
        (unrestricted_bash, unrestricted_bash.unrestricted_bash),
        (unpermitted_shell_command, unpermitted_shell_command.unpermitted_shell_command),
        (file_reference_outside_project,
         file_reference_outside_project.file_reference_outside_project),
        (suppression_without_reason, suppression_without_reason.suppression_without_reason),
    )
}

__all__ = ["CHECKS", "AuditFile", "Check", "Kind"]
