// The marketer console (marketers and admins). This first version signs in and out.
import { label } from "../js/i18n.js";
import { startPage } from "../js/shell.js";

startPage({
  titleKey: "console.title",
  roles: ["marketer", "admin"],
  render(main, user) {
    const section = document.createElement("section");
    section.className = "card";
    section.append(
      label("p", "console.welcome", { name: user.display_name || user.email }),
      label("p", "console.coming"),
    );
    main.append(section);
  },
});
