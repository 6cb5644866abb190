"""One machine, two drivers: the same requests, results, hand-outs and failures whether called or awaited."""

import asyncio

import pytest

from nbflow.core.machines import HAND_OUT, acomplete, adrive, complete, drive


def _machine(log):
    """Asks for two doublings, hands out each result, and logs how it ends."""
    try:
        a = yield ("double", 1)
        yield (HAND_OUT, a)
        b = yield ("double", a)
        yield (HAND_OUT, b)
        return a + b
    except BaseException as exc:
        log.append(type(exc).__name__)
        raise
    finally:
        log.append("finally")


def _double(request):
    if request[1] == "boom":
        raise ValueError("boom")
    return request[1] * 2


async def _adouble(request):
    await asyncio.sleep(0)
    return _double(request)


def test_drive_and_adrive_hand_out_the_same_values_and_return_the_same_result():
    """Called or awaited, the caller sees 2 then 4, and the machine's value is 6."""
    log = []
    driven = drive(_machine(log), _double)
    assert [next(driven), next(driven)] == [2, 4]
    with pytest.raises(StopIteration) as stop:
        next(driven)
    assert stop.value.value == 6
    assert complete(_machine(log), _double) == 6

    async def main():
        final = []
        seen = [v async for v in adrive(_machine(log), _adouble, final)]
        return seen, final

    assert asyncio.run(main()) == ([2, 4], [6])
    assert asyncio.run(acomplete(_machine(log), _adouble)) == 6
    assert log == ["finally"] * 4


def test_a_failure_of_what_the_driver_does_is_thrown_into_the_machine():
    """perform() raising reaches the machine at its request, which sees it and lets it out."""

    def machine(log):
        try:
            yield ("double", "boom")
        except ValueError:
            log.append("caught")
            raise

    log = []
    with pytest.raises(ValueError, match="boom"):
        complete(machine(log), _double)

    async def adouble(request):
        return _double(request)

    with pytest.raises(ValueError, match="boom"):
        asyncio.run(acomplete(machine(log), adouble))
    assert log == ["caught", "caught"]


def test_closing_the_iteration_early_is_thrown_into_the_machine_on_both_drivers():
    """A caller that stops iterating (break, close) gives the machine its GeneratorExit to clean up with."""
    log = []
    driven = drive(_machine(log), _double)
    assert next(driven) == 2
    driven.close()
    assert log == ["GeneratorExit", "finally"]

    async def main():
        agen = adrive(_machine(log), _adouble, [])
        assert await agen.__anext__() == 2
        await agen.aclose()

    asyncio.run(main())
    assert log == ["GeneratorExit", "finally"] * 2
