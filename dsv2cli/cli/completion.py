"""``dsv2 completion SHELL``: the shell-completion script for a shell named explicitly.

``dsv2 --install-completion`` and ``--show-completion`` (typer's) detect the shell from the parent
process; this command names it, for dotfiles and package managers (as ``gh completion -s`` does).
"""

from __future__ import annotations

from typing import Annotated

import typer

from .app import app

SHELLS = ("bash", "zsh", "fish", "powershell", "pwsh")


@app.command()
def completion(
    shell: Annotated[str, typer.Argument(help="bash | zsh | fish | powershell | pwsh", show_default=False)],
) -> None:
    """Print the shell-completion script for SHELL.

    Examples:

    \b
      dsv2 completion bash > ~/.local/share/bash-completion/completions/dsv2
      dsv2 completion zsh > "${fpath[1]}/_dsv2"
      dsv2 completion fish > ~/.config/fish/completions/dsv2.fish
      dsv2 --install-completion      # detects the current shell and installs it
    """
    from typer._completion_shared import get_completion_script

    from ..errors import UsageError
    from .common import Env, handle_errors

    env = Env()
    with handle_errors(env, debug=False):
        if shell not in SHELLS:
            raise UsageError(f"no completion for shell {shell!r}; choose one of {', '.join(SHELLS)}")
        script = get_completion_script(prog_name="dsv2", complete_var="_DSV2_COMPLETE", shell=shell)
        env.screen.write(script.rstrip("\n") + "\n")
