"""What a DataKitchen connection and job say in connections.yml / pipelines.yml."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal, Self

from pydantic import Field, SecretStr

from bot.providers.base import ConnectionConfig, JobConfig


class Connection(ConnectionConfig):
    provider: Literal["datakitchen"] = "datakitchen"
    base_url: str = Field(
        default="https://cloud.datakitchen.io", description="the platform; API paths are v2/... below it"
    )
    username: str = Field(min_length=1, description="the DataKitchen user the bot logs in as")
    password: SecretStr
    console_url: str | None = Field(default="https://cloud.datakitchen.io", description="web console")


#: catalog parameter types whose JSON type DataKitchen keeps (everything else is sent as text)
ParameterType = Literal["int", "bool"]
_JSON_TYPES: frozenset[str] = frozenset({"int", "bool"})


class Job(JobConfig):
    kitchen: str = Field(min_length=1)
    recipe: str = Field(min_length=1)
    variation: str = Field(min_length=1)
    #: filled by the catalog loader from the pipeline's ``parameters`` (``type: int`` / ``type: bool``);
    #: it travels with each run so that a retry or a resume sends the same JSON types
    parameter_types: dict[str, ParameterType] = Field(default_factory=dict)

    def describe(self) -> str:
        return f"recipe {self.recipe} / variation {self.variation} in kitchen {self.kitchen}"

    def lists_as(self, other: JobConfig) -> bool:
        # the parameters' types travel with a run, not the order's identity: a type declared since is the same order
        return isinstance(other, Job) and (self.kitchen, self.recipe, self.variation) == (
            other.kitchen, other.recipe, other.variation)

    def with_parameter_types(self, types: Mapping[str, str]) -> Self:
        """The catalog's declarations decide: a ``parameter_types`` written by hand is replaced."""
        kept = {name: kind for name, kind in types.items() if kind in _JSON_TYPES}
        return self if kept == self.parameter_types else self.model_copy(update={"parameter_types": kept})
