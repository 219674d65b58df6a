"""The registry of durability analyses: endpoints and request options, and the request itself.

Everything that offers an analysis reads this module: the command line builds its
`ltfu durability` options from `OPTIONS`, the dashboard its endpoint list and toggles from
`ENDPOINT_SPECS`, the cached loaders key on `DurabilityRequest`, and `endpoints.check_request`
refuses options outside their endpoints from it. Adding an endpoint or an option is an entry
here (plus its computation in `endpoints` and its tests); no front end lists them again.

Light on purpose (no polars): the command line imports it to build its parser.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date
from typing import Literal, TypedDict, get_args

Endpoint = Literal["os", "efs", "rfs", "bca", "car", "cir"]
ENDPOINTS: tuple[str, ...] = get_args(Endpoint)
KM_ENDPOINTS: tuple[str, ...] = ("os", "efs", "rfs", "bca", "car")
Origin = Literal["infusion", "remission onset"]


@dataclass(frozen=True)
class EndpointSpec:
    """One endpoint (CONTRACT.md §3): its id, its title, where its time starts, and the
    request options that apply to it, in the order a page offers them."""

    id: str
    label: str
    origin: Origin
    options: tuple[str, ...] = ()

    @property
    def competing_risks(self) -> bool:
        """Cumulative incidence with competing causes, not Kaplan–Meier."""
        return self.id not in KM_ENDPOINTS


ENDPOINT_SPECS: tuple[EndpointSpec, ...] = (
    EndpointSpec("os", "Overall survival", "infusion"),
    EndpointSpec("efs", "Event-free survival", "infusion", ("censor_at_new_therapy",)),
    EndpointSpec("rfs", "Relapse-free survival", "remission onset", ("censor_at_new_therapy",)),
    EndpointSpec("bca", "Relapse-free B-cell aplasia", "infusion"),
    EndpointSpec("car", "CAR persistence", "infusion"),
    EndpointSpec(
        "cir",
        "Cumulative incidence of relapse",
        "remission onset",
        ("by_cd19", "hsct_competing"),
    ),
)
ENDPOINT_BY_ID: dict[str, EndpointSpec] = {spec.id: spec for spec in ENDPOINT_SPECS}
DEFAULT_PAGE_ENDPOINT = "efs"


@dataclass(frozen=True)
class OptionSpec:
    """A yes/no option of a durability request: its command-line flag, its label and default on
    the page, and the endpoints it applies to (derived from `ENDPOINT_SPECS`)."""

    field: str
    flag: str
    label: str
    page_default: bool = False

    @property
    def endpoints(self) -> tuple[str, ...]:
        return tuple(spec.id for spec in ENDPOINT_SPECS if self.field in spec.options)

    @property
    def page_key(self) -> str:
        return "dur_" + _PAGE_KEYS.get(self.field, self.field)


OPTIONS: tuple[OptionSpec, ...] = (
    OptionSpec(
        "censor_at_new_therapy", "--censor-at-new-therapy", "Censor at transplant / new therapy"
    ),
    OptionSpec(
        "hsct_competing", "--hsct-competing", "Transplant in remission as a competing event"
    ),
    OptionSpec("by_cd19", "--by-cd19", "Split relapse by CD19", page_default=True),
)
OPTION_BY_FIELD: dict[str, OptionSpec] = {option.field: option for option in OPTIONS}
# widget keys the page has always used (bookmarked sessions keep their toggles)
_PAGE_KEYS = {"censor_at_new_therapy": "censor", "hsct_competing": "hsct"}


@dataclass(frozen=True)
class DurabilityRequest:
    """One durability analysis: frozen and hashable, so it is also the cache key of the
    dashboard's loader. `as_of` None means the store's today."""

    endpoint: str
    by: str | None = None
    as_of: date | None = None
    landmark_days: int | None = None
    censor_at_new_therapy: bool = False
    hsct_competing: bool = False
    by_cd19: bool = False

    @property
    def spec(self) -> EndpointSpec:
        return ENDPOINT_BY_ID[self.endpoint]

    def options_on(self) -> tuple[OptionSpec, ...]:
        """The yes/no options switched on, in registry order."""
        return tuple(option for option in OPTIONS if getattr(self, option.field))

    def with_as_of(self, as_of: date | None) -> DurabilityRequest:
        return replace(self, as_of=as_of)


class RequestOptions(TypedDict, total=False):
    """The fields of `DurabilityRequest` but the endpoint, as keyword arguments."""

    by: str | None
    as_of: date | None
    landmark_days: int | None
    censor_at_new_therapy: bool
    hsct_competing: bool
    by_cd19: bool


def as_request(request: DurabilityRequest | str, options: RequestOptions) -> DurabilityRequest:
    """A request, or an endpoint id plus keyword options (`by=…, as_of=…`) made into one."""
    if isinstance(request, DurabilityRequest):
        if options:
            raise TypeError("pass either a DurabilityRequest or keyword options, not both")
        return request
    return DurabilityRequest(endpoint=request, **options)
