"""``dsv2 completion SHELL``: the shell-completion script for a shell named explicitly.

``dsv2 --install-completion`` and ``--show-completion`` (typer's) detect the shell from the parent
process; this command names it, for dotfiles and package managers (as ``gh completion -s`` does).
"""

from __future__ import annotations

from typing import Annotated

import typer

from .app import app
from .common import Env
from .options import Flags, uses

SHELLS = ("bash", "zsh", "fish", "powershell", "pwsh")


@app.command()
@uses()
def completion(
    shell: Annotated[str, typer.Argument(help="bash | zsh | fish | powershell | pwsh", show_default=False)],
    *,
    flags: Flags,
    env: Env,
) -> None:
    """Print the shell-completion script for SHELL.

    Examples:

    \b
      dsv2 completion bash > ~/.local/share/bash-completion/completions/dsv2
      dsv2 completion zsh > "${fpath[1]}/_dsv2"
      dsv2 completion fish > ~/.config/fish/completions/dsv2.fish
      dsv2 --install-completion      # detects the current shell and installs it
    """
    # typer's own script generator (a private module: typer is pinned below 0.21 in pyproject.toml)
    from typer._completion_shared import get_completion_script

    from ..errors import UsageError

    if shell not in SHELLS:
        raise UsageError(f"no completion for shell {shell!r}; choose one of {', '.join(SHELLS)}")
    script = get_completion_script(prog_name="dsv2", complete_var="_DSV2_COMPLETE", shell=shell)
    env.screen.write(script.rstrip("\n") + "\n")
