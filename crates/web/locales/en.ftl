# English.
site-name = ortaq — the EAEU integrated information system
skip-to-content = Skip to content
nav-main = Main navigation
nav-home = Node
nav-nsi = Reference data
nav-api = API
language = Language
node-title = Node { $segment }
node-intro = A node of the integrated information system of the Eurasian Economic Union: it takes electronic documents from the information systems of authorities, signs them, and delivers them to other states over protected channels.
participants-title = Participants of the node
participants-none = The node has no participants.
participant-address = Logical address
participant-name = Name
nsi-title = Reference data
nsi-intro = The reference books and classifiers this node holds, in their latest version.
nsi-none = The node holds no reference data yet.
nsi-code = Code
nsi-name = Name
nsi-version = Version
nsi-published = Published
nsi-items = Entries
nsi-items-count = { $count ->
    [one] { $n } entry
   *[other] { $n } entries
}
nsi-kind-resource = reference book
nsi-kind-crosswalk = crosswalk
item-code = Code
item-name = Name
item-other-names = In other languages
item-valid = Valid
item-valid-from = from { $from }
item-valid-to = until { $to }
search-label = Search by code or name
search-button = Search
search-found = { $count ->
    [one] { $n } entry found
   *[other] { $n } entries found
}
page-prev = Previous
page-next = Next
page-of = Page { $page } of { $pages }
not-found-title = Page not found
not-found-text = There is no such page here. Check the address, or start from the node's main page.
unavailable-title = Data unavailable for now
unavailable-text = The node could not read the data. Try again later.
api-link = API description (OpenAPI)
nav-signin = Sign in
signout-button = Sign out
signin-title = Sign in
signin-intro = For staff of authorities, the Commission, node operators and businesses registered at this node. Reading the pages needs no account.
signin-login = Login
signin-password = Password
signin-button = Sign in
signin-refused = Wrong login or password.
signin-locked = Too many wrong passwords: this account is locked until { $time }. Try again then, or ask the node's operator.
form-expired-title = The form has expired
form-expired-text = The page the form came from is out of date, or came from another site. Open the page again and send the form once more.
account-title = Your account
account-name = Name
account-login = Login
account-roles = Roles
account-session = Session
account-session-until = until { $day }, { $time }
role-operator = Node operator
role-analyst = Commission analyst
role-officer = Authority officer
role-business = Business user
signin-elsewhere = Registered at another state's node?
signin-elsewhere-intro = Sign in at your own node; it tells this one who you are. No password of yours comes here.
signin-via = Sign in through the node of { $segment }
oidc-unknown-client-title = Unknown relying node
oidc-unknown-client-text = The site that sent you here is not a node the federation's trust list names, or asked to send you somewhere else. Nothing was sent to it.
oidc-not-ours-title = Sign in with an account of this node
oidc-not-ours-text = You are signed in here through another node. A node speaks only for its own people: sign in to the other site through your own node.
oidc-failed-title = Sign-in through another node did not complete
oidc-failed-text = The answer of the other node could not be checked, or the sign-in took too long. Start again from the sign-in page.
