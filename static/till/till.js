// The staff till (staff of one store). This first version signs in and out.
import { label } from "../js/i18n.js";
import { startPage } from "../js/shell.js";

startPage({
  titleKey: "till.title",
  roles: ["staff"],
  render(main, user) {
    const section = document.createElement("section");
    section.className = "card";
    section.append(
      label("p", "till.welcome", { name: user.display_name || user.email }),
      label("p", "till.store", { store: user.store_id }),
      label("p", "till.coming"),
    );
    main.append(section);
  },
});
