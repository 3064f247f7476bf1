def test_sign_in_and_list(app, client, make_user, make_contact, login):
    rep = make_user("rep")
    make_contact(rep, name="Alice Archer", company="Acme", phone="+44 20 7946 0001")
    login(rep)
    r = client.get("/contacts")
    assert r.status_code == 200, r.get_data(as_text=True)
    assert "Alice Archer" in r.get_data(as_text=True)
