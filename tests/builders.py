"""Build materials up to a given stage through the real services, for tests."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine

from lims.db import utcnow, write_session
from lims.demo import PASSING_AAPE_QC
from lims.lifecycle import transition
from lims.materials.kinds import MaterialKind, Use
from lims.materials.models import Material
from lims.materials.service import get_material, register_material
from lims.parties.models import User
from lims.parties.service import get_patient
from lims.qc.models import QcResult
from lims.qc.service import enter_result, release, specification_of
from lims.signatures.passwords import set_password
from lims.sops.parameters import typical_parameters
from lims.steps.service import (
    InputBooking,
    LossBooking,
    OutputRequest,
    StepResult,
    record_step,
)
from lims.units import QuantityKind, parse_quantity
from tests.conftest import World

PASSWORD = "correct horse battery staple"
# The AAPE lot's passing results (the demo's), and the DP cell product's extra tests.
PASSING: dict[str, object] = {
    **PASSING_AAPE_QC,
    "viability": "90 %",
    "cell_count": "5e6 cells",
    "identity": "conforms",
}
INTAKE_OK = typical_parameters("LIPO-INTAKE")
SVF_OK = typical_parameters("SVF-SEP")
LYO_OK = typical_parameters("AAPE-LYO")


@dataclass
class Lab:
    engine: Engine
    world: World
    t0: datetime

    @classmethod
    def start(cls, engine: Engine, world: World) -> Lab:
        return cls(engine=engine, world=world, t0=utcnow() - timedelta(days=6))

    def at(self, hours: float) -> datetime:
        return self.t0 + timedelta(hours=hours)

    def user(self, s: Any, user_id: int) -> User:
        user = s.get(User, user_id)
        assert user is not None
        return user

    def step(
        self, code: str, hours: float, *, actor_id: int | None = None, **kw: Any
    ) -> StepResult:
        with write_session(self.engine) as s:
            actor = self.user(s, actor_id or self.world.tech_id)
            return record_step(s, sop_code=code, actor=actor, performed_at=self.at(hours), **kw)

    def get(self, material_id: str) -> Material:
        with write_session(self.engine) as s:
            return get_material(s, material_id)

    def move(
        self,
        material_id: str,
        state: str,
        *,
        actor_id: int | None = None,
        reason: str | None = None,
    ) -> Material:
        with write_session(self.engine) as s:
            m = get_material(s, material_id)
            return transition(
                s,
                material=m,
                to_state=state,
                actor=self.user(s, actor_id or self.world.tech_id),
                reason=reason,
            )

    def inst(self, *types: str) -> list[int]:
        return [self.world.instruments[t] for t in types]

    def reag(self, *types: str) -> list[int]:
        return [self.world.reagents[t] for t in types]

    # --- stages -----------------------------------------------------------------------
    def lipoaspirate(
        self,
        volume: str = "120 mL",
        *,
        coi: str | None = None,
        collected_hours: float = 0,
        use: Use = Use.AUTOLOGOUS,
    ) -> str:
        with write_session(self.engine) as s:
            m = register_material(
                s,
                kind=MaterialKind.LIPOASPIRATE,
                patient=get_patient(s, coi_id=coi or self.world.patient_coi),
                use=use,
                quantity=parse_quantity(volume, QuantityKind.VOLUME),
                actor=self.user(s, self.world.tech_id),
                state="RECEIVED",
                collected_at=self.at(collected_hours),
            )
            return m.material_id

    def accepted_lipoaspirate(self, volume: str = "120 mL", **kw: Any) -> str:
        mid = self.lipoaspirate(volume, **kw)
        self.step(
            "LIPO-INTAKE",
            4,
            inputs=[InputBooking(mid)],
            parameters=typical_parameters("LIPO-INTAKE", received_volume=volume),
        )
        return mid

    def svf(
        self,
        *,
        viability: str = "86 %",
        cells: str = "1.9e7 cells",
        coi: str | None = None,
        use: Use = Use.AUTOLOGOUS,
    ) -> str:
        lipo = self.accepted_lipoaspirate(coi=coi, use=use)
        result = self.step(
            "SVF-SEP",
            6,
            inputs=[InputBooking(lipo, "100 mL")],
            outputs=[OutputRequest(cells)],
            instrument_ids=self.inst("centrifuge", "shaking_incubator", "cell_counter"),
            reagent_lot_ids=self.reag("collagenase"),
            parameters=typical_parameters("SVF-SEP", viability=viability),
        )
        return result.outputs[0].material_id

    def culture(self, *, coi: str | None = None, use: Use = Use.AUTOLOGOUS) -> str:
        svf = self.svf(coi=coi, use=use)
        result = self.step(
            "ADSC-SEED",
            8,
            inputs=[InputBooking(svf, "7e5 cells")],
            outputs=[OutputRequest("7e5 cells")],
            instrument_ids=self.inst("biosafety_cabinet", "co2_incubator"),
            reagent_lot_ids=self.reag("culture_medium"),
            parameters=typical_parameters("ADSC-SEED"),
        )
        return result.outputs[0].material_id

    def count(self, culture: str, hours: float, cells: str) -> StepResult:
        return self.step(
            "CULTURE-COUNT",
            hours,
            inputs=[InputBooking(culture)],
            instrument_ids=self.inst("cell_counter"),
            parameters=typical_parameters("CULTURE-COUNT", cell_count=cells),
        )

    def passage(
        self,
        culture: str,
        hours: float,
        harvested: str,
        outputs: list[str],
        loss: str | None = None,
        area: str = "700 cm^2",
    ) -> StepResult:
        losses = [LossBooking(culture, loss, "count sample")] if loss else []
        return self.step(
            "ADSC-PASSAGE",
            hours,
            inputs=[InputBooking(culture, harvested)],
            outputs=[OutputRequest(q) for q in outputs],
            losses=losses,
            instrument_ids=self.inst("biosafety_cabinet", "cell_counter"),
            reagent_lot_ids=self.reag("culture_medium"),
            parameters=typical_parameters(
                "ADSC-PASSAGE", harvested_cells=harvested, culture_area=area
            ),
        )

    def cm_batch(self, volume: str = "60 mL", *, culture: str | None = None) -> str:
        culture = culture or self.culture()
        self.count(culture, 50, "2.8e6 cells")
        self.step(
            "HYPOXIA-START",
            51,
            inputs=[InputBooking(culture)],
            instrument_ids=self.inst("trigas_incubator"),
            reagent_lot_ids=self.reag("culture_medium"),
            parameters=typical_parameters("HYPOXIA-START"),
        )
        result = self.step(
            "CM-HARVEST",
            99,
            inputs=[InputBooking(culture)],
            outputs=[OutputRequest(volume)],
            instrument_ids=self.inst("trigas_incubator"),
            parameters=typical_parameters("CM-HARVEST"),
        )
        cm = result.outputs[0].material_id
        self.step(
            "CM-CLARIFY",
            100,
            inputs=[InputBooking(cm)],
            losses=[LossBooking(cm, "1 mL", "filter hold-up")],
            instrument_ids=self.inst("centrifuge"),
            reagent_lot_ids=self.reag("sterile_filter"),
            parameters=typical_parameters("CM-CLARIFY"),
        )
        return cm

    def lot(self, *, released: bool = True, cm: str | None = None) -> str:
        lot = self.filled_lot(cm=cm)
        if released:
            self.move(lot, "QC_TESTING")
            self.pass_qc(lot)
            self.release(lot)
        return lot

    def allogeneic_lot(self) -> str:
        """A released lot from the world's eligible allogeneic donor: any of the clinics'
        patients may be given it (a test with many patients' orders for one lot)."""
        from lims.qc.eligibility import record_donor_eligibility

        culture = self.culture(coi=self.world.donor_coi, use=Use.ALLOGENEIC)
        lot = self.filled_lot(cm=self.cm_batch("61 mL", culture=culture))
        self.move(lot, "QC_TESTING")
        self.pass_qc(lot)
        with write_session(self.engine) as s:
            record_donor_eligibility(
                s,
                donor=get_patient(s, coi_id=self.world.donor_coi),
                eligible=True,
                actor=self.user(s, self.world.qa_id),
                basis="screening negative (HIV, HBV, HCV, syphilis); history",
            )
        self.release(lot)
        return lot

    def filled_lot(
        self,
        *,
        cm: str | None = None,
        fill: dict[str, Any] | None = None,
        lyo: dict[str, Any] | None = None,
        lyo_actor_id: int | None = None,
    ) -> str:
        """15 vials filled from 60 mL of CM and freeze-dried (typical parameters unless
        ``fill``/``lyo`` override some)."""
        cm = cm or self.cm_batch("61 mL")  # 60 mL after clarification
        result = self.step(
            "AAPE-FILL",
            101,
            inputs=[InputBooking(cm, "60 mL")],
            outputs=[OutputRequest("15 vials")],
            instrument_ids=self.inst("biosafety_cabinet"),
            parameters=typical_parameters("AAPE-FILL", **(fill or {})),
        )
        lot = result.outputs[0].material_id
        self.step(
            "AAPE-LYO",
            120,
            inputs=[InputBooking(lot)],
            actor_id=lyo_actor_id,
            instrument_ids=self.inst("freeze_dryer", "karl_fischer_titrator"),
            parameters=typical_parameters("AAPE-LYO", **(lyo or {})),
        )
        return lot

    # --- QC, signatures, release ----------------------------------------------------
    def ensure_password(self, user_id: int) -> str:
        with write_session(self.engine) as s:
            user = self.user(s, user_id)
            if user.password_hash is None:
                set_password(s, user=user, password=PASSWORD, actor=None)
        return PASSWORD

    def result(
        self, material_id: str, test: str, value: object, actor_id: int | None = None
    ) -> QcResult:
        with write_session(self.engine) as s:
            return enter_result(
                s,
                material=get_material(s, material_id),
                test_code=test,
                value=value,
                actor=self.user(s, actor_id or self.world.tech2_id),
            )

    def pass_qc(self, material_id: str) -> None:
        with write_session(self.engine) as s:
            spec = specification_of(s, material=get_material(s, material_id))
        for test in spec.tests:
            if test.required:
                self.result(material_id, test.code, PASSING[test.code])

    def release(
        self, material_id: str, *, actor_id: int | None = None, password: str | None = None
    ) -> Material:
        actor_id = actor_id or self.world.qa_id
        real = self.ensure_password(actor_id)
        with write_session(self.engine) as s:
            return release(
                s,
                material=get_material(s, material_id),
                actor=self.user(s, actor_id),
                password=password or real,
            )

    def allocate(
        self,
        lot: str,
        coi: str,
        *,
        vials: str = "1 vial",
        identifiers: tuple[str, str] | None = None,
    ) -> StepResult:
        if identifiers is None:
            with write_session(self.engine) as s:
                patient = get_patient(s, coi_id=coi)
                identifiers = (patient.identifier_1, patient.identifier_2)
        ids = identifiers
        return self.step(
            "DOSE-ALLOCATE",
            130,
            inputs=[InputBooking(lot, vials)],
            outputs=[OutputRequest(vials)],
            parameters=typical_parameters(
                "DOSE-ALLOCATE",
                recipient_coi=coi,
                recipient_identifier_1=ids[0],
                recipient_identifier_2=ids[1],
            ),
        )


def more_patients(engine: Engine, world: World, n: int) -> list[str]:
    """``n`` more of Ginza's patients: a course orders each session once (lims.orders.course),
    so a test that places many orders at once spreads them over patients."""
    from lims.parties.models import Clinic
    from lims.parties.service import register_patient

    with write_session(engine) as s:
        clinic = s.get(Clinic, world.clinic_id)
        assert clinic is not None
        return [
            register_patient(
                s, clinic=clinic, identifier_1="1985-06-01", identifier_2=f"GHC-9{i:05d}"
            ).coi_id
            for i in range(n)
        ]
