"""`userreg completion bash|zsh`: a shell completion script, built from the command's own argparse
tree, so it never falls behind a new command or option: commands and subcommands, each one's
options, the values of options and arguments that have a fixed set (`--status`, `--type`, …) and
file names for options that take a file (metavar `F` or `FILE`).

The script walks the words typed so far to the deepest command they name, then offers that
command's options (after a `-`) or its subcommands and argument values."""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field

SHELLS = ("bash", "zsh")
FILE_METAVARS = frozenset({"F", "FILE"})


@dataclass
class Command:
    """What completes after the words that name a command ('' : `userreg` itself)."""

    words: list[str] = field(default_factory=list)  # subcommands, or an argument's fixed values
    options: list[str] = field(default_factory=list)
    option_values: dict[str, list[str]] = field(default_factory=dict)
    file_options: list[str] = field(default_factory=list)


def command_tree(parser: argparse.ArgumentParser, path: str = "") -> dict[str, Command]:
    """Every command of the parser by the words that name it ("user list")."""
    command, tree = Command(), {}
    tree[path] = command
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                command.words.append(name)
                tree.update(command_tree(child, f"{path} {name}".strip()))
        elif action.option_strings:
            command.options.extend(action.option_strings)
            takes_value = action.nargs != 0
            for option in action.option_strings:
                if takes_value and action.choices:
                    command.option_values[option] = [str(choice) for choice in action.choices]
                elif takes_value and action.metavar in FILE_METAVARS:
                    command.file_options.append(option)
        elif action.choices and not command.words:
            command.words.extend(str(choice) for choice in action.choices)
    return tree


def _quoted(word: str) -> str:
    if "'" in word:
        raise ValueError(f"a completion word with a quote: {word!r}")
    return f"'{word}'"


def _cases(branches: dict[str, str], indent: str) -> str:
    """The branches of a `case` (same syntax in bash and zsh); '' when there are none."""
    return "".join(f"{indent}{pattern}) {body} ;;\n" for pattern, body in branches.items())


def completion_script(tree: dict[str, Command], shell: str, program: str = "userreg") -> str:
    """The completion script of the tree for `shell` (bash or zsh)."""
    paths = "|".join(_quoted(path) for path in tree if path) or "''"
    # The pattern "command|previous word": an option's value is completed right after it.
    values: dict[str, str] = {}
    files: list[str] = []
    for path, command in tree.items():
        for option, choices in command.option_values.items():
            values[_quoted(f"{path}|{option}")] = " ".join(choices)
        files.extend(_quoted(f"{path}|{option}") for option in command.file_options)
    options = {_quoted(path): " ".join(command.options) for path, command in tree.items() if command.options}
    words = {_quoted(path): " ".join(command.words) for path, command in tree.items() if command.words}
    function = f"_{program}"
    if shell == "bash":
        offer_value = {
            pattern: f"COMPREPLY=($(compgen -W '{choices}' -- \"$cur\")); return" for pattern, choices in values.items()
        }
        if files:
            offer_value["|".join(files)] = 'compopt -o filenames; COMPREPLY=($(compgen -f -- "$cur")); return'
        return (
            f"# bash completion for {program}: `source <({program} completion bash)`, e.g. in ~/.bashrc\n"
            f"{function}() {{\n"
            '    local cur="${COMP_WORDS[COMP_CWORD]}" prev="${COMP_WORDS[COMP_CWORD-1]}"\n'
            '    local node="" candidate choices="" i\n'
            "    for ((i = 1; i < COMP_CWORD; i++)); do\n"
            '        candidate="${node:+$node }${COMP_WORDS[i]}"\n'
            f'        case "$candidate" in {paths}) node="$candidate" ;; esac\n'
            "    done\n"
            f'    case "$node|$prev" in\n{_cases(offer_value, " " * 8)}    esac\n'
            '    if [[ "$cur" == -* ]]; then\n'
            f'        case "$node" in\n{_cases(_set("choices", options), " " * 12)}        esac\n'
            "    else\n"
            f'        case "$node" in\n{_cases(_set("choices", words), " " * 12)}        esac\n'
            "    fi\n"
            '    COMPREPLY=($(compgen -W "$choices" -- "$cur"))\n'
            "}\n"
            f"complete -F {function} {program}\n"
        )
    if shell == "zsh":
        offer_value = {pattern: f"compadd -- {choices}; return" for pattern, choices in values.items()}
        if files:
            offer_value["|".join(files)] = "_files; return"
        return (
            f"#compdef {program}\n"
            f"# zsh completion for {program}: save it as {function} in a directory of $fpath, or\n"
            f"# `source <({program} completion zsh)` after compinit, e.g. in ~/.zshrc\n"
            f"{function}() {{\n"
            '    local cur="${words[CURRENT]}" prev="${words[CURRENT-1]}" node="" candidate i\n'
            "    local -a choices\n"
            "    for ((i = 2; i < CURRENT; i++)); do\n"
            '        candidate="${node:+$node }${words[i]}"\n'
            f'        case "$candidate" in {paths}) node="$candidate" ;; esac\n'
            "    done\n"
            f'    case "$node|$prev" in\n{_cases(offer_value, " " * 8)}    esac\n'
            '    if [[ "$cur" == -* ]]; then\n'
            f'        case "$node" in\n{_cases(_list("choices", options), " " * 12)}        esac\n'
            "    else\n"
            f'        case "$node" in\n{_cases(_list("choices", words), " " * 12)}        esac\n'
            "    fi\n"
            '    compadd -- "${choices[@]}"\n'
            "}\n"
            f'if [[ "${{funcstack[1]}}" == "{function}" ]]; then\n'
            f'    {function} "$@"\n'
            "else\n"
            f"    compdef {function} {program}\n"
            "fi\n"
        )
    raise ValueError(f"no completion for the shell {shell!r}; shells: {', '.join(SHELLS)}")


def _set(variable: str, branches: dict[str, str]) -> dict[str, str]:
    return {pattern: f"{variable}='{value}'" for pattern, value in branches.items()}


def _list(variable: str, branches: dict[str, str]) -> dict[str, str]:
    return {pattern: f"{variable}=({value})" for pattern, value in branches.items()}


def register(commands: argparse._SubParsersAction, root: argparse.ArgumentParser) -> None:
    """The `completion` command, which completes the whole tree of `root` (register it last)."""
    parser = commands.add_parser(
        "completion",
        help="print a shell completion script: bash or zsh",
        description="Print a completion script for the shell: commands, options and their fixed values. "
        "bash: `source <(userreg completion bash)` (e.g. in ~/.bashrc); zsh: `source <(userreg "
        "completion zsh)` after compinit, or save it as _userreg in a directory of $fpath.",
    )
    parser.add_argument("shell", choices=SHELLS, metavar="SHELL", help="bash or zsh")

    async def print_script(args: argparse.Namespace, settings: object) -> None:
        print(completion_script(command_tree(root), args.shell), end="")

    parser.set_defaults(handler=print_script, needs_settings=False)
