from renderer.text.symbols import SYMBOL_TO_ID, SYMBOLS, UNK_ID, ids_to_phones, phones_to_ids


def test_table_size_and_pinned_ids() -> None:
    assert len(SYMBOLS) == 732 and len(set(SYMBOLS)) == 732
    pinned = {"!": 0, ",": 1, "AA": 5, "SP": 77, "UNK": 86, "_": 95, "[": 322, "]": 323}
    pinned |= {"停": 351, "空": 352, "Yz": 731}
    for sym, idx in pinned.items():
        assert SYMBOL_TO_ID[sym] == idx, sym


def test_v1_prefix_is_sorted_and_ordering_of_later_groups() -> None:
    v1 = list(SYMBOLS[:322])
    assert v1 == sorted(v1)
    assert SYMBOLS[324:351] == tuple(sorted("ㄱㄴㄷㄹㅁㅂㅅㅇㅈㅊㅋㅌㅍㅎㄲㄸㅃㅆㅉㅏㅓㅗㅜㅡㅣㅐㅔ"))
    yue = SYMBOLS[353:]
    assert len(yue) == 379 and list(yue) == sorted(yue) and all(s.startswith("Y") for s in yue)
    for sym in ("a1", "zh", "ir4", "i05", "AH0", "ZH", "cl", "SP3", "En5", "Yaa", "Yyut6"):
        assert sym in SYMBOL_TO_ID


def test_unknown_phones_map_to_unk_and_are_counted() -> None:
    ids, unknown = phones_to_ids(["HH", "AH0", "??", "L", "OW1", "nope"])
    assert unknown == 2
    assert ids[2] == UNK_ID == ids[5] == 86
    assert ids_to_phones(ids) == ["HH", "AH0", "UNK", "L", "OW1", "UNK"]
